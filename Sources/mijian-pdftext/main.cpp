// mijian-pdftext: the text of PDFs' first pages, for `mijian scan`, in a process of its own.
//
// The scan starts one per reading thread and keeps it for many PDFs, instead of one pdftotext a
// PDF: loading poppler and its globals once is most of what pdftotext costs on a small file. A
// hostile PDF can crash or hang this process, never the scan: the scan kills it at a deadline,
// lists the PDF as unread, and starts another.
//
// It links poppler's core library (Debian libpoppler-private-dev to build, libpoppler126 to run),
// not its C++ wrapper: the wrapper always hands poppler an owner password and a user password
// (empty ones when none is given), and poppler then runs the AES-256 key derivation (PDF 2.0's
// deliberately slow hash, revision 6) once for each, and a third time when both fail. Opened
// here with no owner password and an empty user password, an encrypted PDF costs one
// derivation: the same text and the same status, in a third to a half of the time.
//
// Protocol on standard input, a Unix stream socket: the scan sends one byte carrying an open
// descriptor of the PDF (SCM_RIGHTS); the worker answers with a status byte (0 text, 1 locked
// by a password, 2 unreadable, 3 no pages), a 4-byte little-endian length and that many bytes:
// the first page's text as `pdftotext -layout -f 1 -l 1 -enc UTF-8` gives it (poppler's
// physical layout), or poppler's last error message. The worker opens no path: it reads only the
// descriptors it is given, so `mijian scan --root` confinement holds.
#include <poppler/ErrorCodes.h>
#include <poppler/Error.h>
#include <poppler/GlobalParams.h>
#include <poppler/PDFDoc.h>
#include <poppler/Page.h>
#include <poppler/Stream.h>
#include <poppler/TextOutputDev.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static std::string last_error;

// poppler's last complaint, worded as its C++ wrapper words it ("error (OFFSET): MESSAGE").
static void on_error(ErrorCategory, Goffset position, const char *message) {
    std::ostringstream line;
    if (position >= 0) {
        line << "error (" << position << "): ";
    } else {
        line << "error: ";
    }
    line << message;
    last_error = line.str();
}

static int receive_fd(int sock) {
    char byte;
    iovec io{&byte, 1};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
    msghdr msg{};
    msg.msg_iov = &io;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    ssize_t got;
    do { got = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC); } while (got < 0 && errno == EINTR);
    if (got <= 0) return -2;  // the scan is gone: exit
    for (cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
            int fd;
            std::memcpy(&fd, CMSG_DATA(c), sizeof(int));
            return fd;
        }
    }
    return -1;
}

static bool write_all(int fd, const char *data, size_t size) {
    while (size > 0) {
        ssize_t wrote = write(fd, data, size);
        if (wrote < 0 && errno == EINTR) continue;
        if (wrote <= 0) return false;
        data += wrote;
        size -= size_t(wrote);
    }
    return true;
}

static bool answer(int sock, uint8_t status, const std::string &text) {
    uint32_t length = uint32_t(text.size());
    char header[5] = {char(status), char(length & 0xFF), char((length >> 8) & 0xFF), char((length >> 16) & 0xFF), char(length >> 24)};
    return write_all(sock, header, 5) && write_all(sock, text.data(), text.size());
}

static void append_text(void *out, const char *text, int length) { static_cast<std::string *>(out)->append(text, size_t(length)); }

static bool first_page(int sock, int fd) {
    struct stat info{};
    if (fstat(fd, &info) != 0 || info.st_size <= 0 || info.st_size > INT32_MAX) return answer(sock, 2, "not a readable file of a size poppler takes");
    void *map = mmap(nullptr, size_t(info.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED) return answer(sock, 2, std::string("cannot map the file: ") + std::strerror(errno));
    last_error.clear();
    bool ok;
    {
        // The document owns the stream; the stream reads the mapping and does not free it.
        auto *stream = new MemStream(static_cast<const char *>(map), 0, Goffset(info.st_size), Object(objNull));
        const std::optional<GooString> no_owner_password;
        const std::optional<GooString> empty_user_password{GooString("")};
        PDFDoc document(stream, no_owner_password, empty_user_password);
        if (!document.isOk()) {
            if (document.getErrorCode() == errEncrypted) {
                ok = answer(sock, 1, last_error.empty() ? "the document is locked" : last_error);
            } else {
                ok = answer(sock, last_error.find("assword") != std::string::npos ? 1 : 2, last_error);
            }
        } else if (document.getNumPages() < 1) {
            ok = answer(sock, 3, last_error);
        } else if (document.getPage(1) == nullptr) {
            ok = answer(sock, 2, last_error.empty() ? "the first page cannot be read" : last_error);
        } else {
            // What `pdftotext -layout -f 1 -l 1 -enc UTF-8` prints: physical layout, the page's
            // crop box at 72 dpi, UTF-8 (GlobalParams' default text encoding).
            std::string text;
            {
                TextOutputDev output(&append_text, &text, true, 0, false, false);
                document.displayPage(&output, 1, 72, 72, 0, false, true, false);
            }
            ok = answer(sock, 0, text);
        }
    }
    munmap(map, size_t(info.st_size));
    return ok;
}

int main() {
    // A bound on what one hostile file can make it take: 2 GiB of address space.
    rlimit limit{2UL << 30, 2UL << 30};
    setrlimit(RLIMIT_AS, &limit);
    // poppler's globals (built-in encodings, Unicode and CMap tables, their caches), made once
    // for the worker's life instead of once a PDF.
    globalParams = std::make_unique<GlobalParams>();
    setErrorCallback(on_error);
    for (;;) {
        int fd = receive_fd(0);
        if (fd == -2) return 0;
        bool ok = fd < 0 ? answer(0, 2, "no descriptor was passed") : first_page(0, fd);
        if (fd >= 0) close(fd);
        if (!ok) return 1;
    }
}
