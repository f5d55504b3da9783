#!/usr/bin/env bash
# Regenerates Sources/MijianCore/Policy/EmbeddedPolicies.swift from Policies/*.yaml.
set -euo pipefail
cd "$(dirname "$0")/.."
out=Sources/MijianCore/Policy/EmbeddedPolicies.swift
{
  echo '// Generated from Policies/ by scripts/embed-policies.sh; a test checks it matches the files.'
  echo '// Edit the YAML files, then run the script.'
  echo
  echo '/// The policies built into the binary.'
  echo 'public enum EmbeddedPolicies {'
  first=1
  for f in Policies/*.yaml; do
    name=$(basename "$f" .yaml)
    case "$name" in self-assessment*) continue ;; esac
    ident=$(echo "$name" | awk -F- '{for(i=1;i<=NF;i++){ if(i==1) printf "%s", $i; else printf "%s", toupper(substr($i,1,1)) substr($i,2)}}')
    [ $first = 1 ] || echo
    first=0
    echo "    /// \`$f\`, byte for byte."
    echo "    public static let $ident: String = #\"\"\""
    cat "$f"
    echo
    echo '"""#'
  done
  echo '}'
} > "$out"
