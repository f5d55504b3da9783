// mijian-pdftext: the text of PDFs' first pages, for `mijian scan`, in a process of its own.
//
// The scan starts one per reading thread and keeps it for many PDFs, instead of one pdftotext a
// PDF: loading poppler and its globals once is most of what pdftotext costs on a small file. A
// hostile PDF can crash or hang this process, never the scan: the scan kills it at a deadline,
// lists the PDF as unread, and starts another.
//
// Protocol on standard input, a Unix stream socket: the scan sends one byte carrying an open
// descriptor of the PDF (SCM_RIGHTS); the worker answers with a status byte (0 text, 1 locked
// by a password, 2 unreadable, 3 no pages), a 4-byte little-endian length and that many bytes:
// the first page's text as `pdftotext -layout -f 1 -l 1 -enc UTF-8` gives it (poppler's
// physical layout), or poppler's last error message. The worker opens no path: it reads only the
// descriptors it is given, so `mijian scan --root` confinement holds.
#include <poppler/cpp/poppler-document.h>
#include <poppler/cpp/poppler-global.h>
#include <poppler/cpp/poppler-page.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static std::string last_error;

static void on_error(const std::string &message, void *) { last_error = message; }

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

static bool first_page(int sock, int fd) {
    struct stat info{};
    if (fstat(fd, &info) != 0 || info.st_size <= 0 || info.st_size > INT32_MAX) return answer(sock, 2, "not a readable file of a size poppler takes");
    void *map = mmap(nullptr, size_t(info.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED) return answer(sock, 2, std::string("cannot map the file: ") + std::strerror(errno));
    last_error.clear();
    bool ok;
    {
        std::unique_ptr<poppler::document> document(poppler::document::load_from_raw_data(static_cast<const char *>(map), int(info.st_size)));
        if (!document) {
            ok = answer(sock, last_error.find("assword") != std::string::npos ? 1 : 2, last_error);
        } else if (document->is_locked()) {
            ok = answer(sock, 1, last_error.empty() ? "the document is locked" : last_error);
        } else if (document->pages() < 1) {
            ok = answer(sock, 3, last_error);
        } else {
            std::unique_ptr<poppler::page> page(document->create_page(0));
            if (!page) {
                ok = answer(sock, 2, last_error.empty() ? "the first page cannot be read" : last_error);
            } else {
                poppler::byte_array utf8 = page->text(poppler::rectf(), poppler::page::physical_layout).to_utf8();
                ok = answer(sock, 0, std::string(utf8.begin(), utf8.end()));
            }
        }
    }
    munmap(map, size_t(info.st_size));
    return ok;
}

int main() {
    // A bound on what one hostile file can make it take: 2 GiB of address space.
    rlimit limit{2UL << 30, 2UL << 30};
    setrlimit(RLIMIT_AS, &limit);
    poppler::set_debug_error_function(on_error, nullptr);
    // poppler-cpp makes its GlobalParams (built-in encodings, Unicode and CMap tables, their
    // caches) when the first document opens and drops them when the last one closes: two thirds
    // of a small PDF's time went into building them again for every PDF. An empty document held
    // for the worker's life keeps them; the text of every PDF is the same with or without it.
    static const char empty[] =
        "%PDF-1.0\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\n"
        "trailer<</Root 1 0 R>>\n%%EOF\n";
    std::unique_ptr<poppler::document> keeper(poppler::document::load_from_raw_data(empty, int(sizeof(empty) - 1)));
    for (;;) {
        int fd = receive_fd(0);
        if (fd == -2) return 0;
        bool ok = fd < 0 ? answer(0, 2, "no descriptor was passed") : first_page(0, fd);
        if (fd >= 0) close(fd);
        if (!ok) return 1;
    }
}
