# Idle shells end after 15 minutes (CIS Debian 12 5.4.3.2).
TMOUT=900
readonly TMOUT
export TMOUT
