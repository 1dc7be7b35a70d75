// nvrtc.cpp: libnvrtc.so.13 of cudasim (see padsim.h). It "compiles" CUDA
// C++ by compiling it with the host's C++ compiler around emu.h into a
// shared object, which becomes a module image (padsim.h) that the
// simulated driver loads.
//
// A compile:
//   1. parses the options as NVRTC does (unknown ones are
//      NVRTC_ERROR_INVALID_OPTION, with a log line naming them);
//   2. scans the source (lexer below): the __global__ functions to
//      register, whether each can reach a barrier or warp operation (if not,
//      module_main.h runs its threads as plain calls), the __shared__
//      variables each can reach (static shared memory), and the
//      extern __shared__ declarations, rewritten to read the launch's
//      dynamic shared memory (line numbers kept);
//   3. looks the image up in the cache (SHA-256 of everything that goes
//      into it), else writes a translation unit into a temporary folder
//      (emu.h, module_main.h, the -D macros, the source saved under the
//      program's name, the kernel table) and runs the compiler with
//      posix_spawn (we live inside a Go process: no fork), its output
//      becoming the program log in NVRTC's "file(line): error: ..." style;
//   4. reads back the signature records (section "padsim_sig") for the PTX
//      text, measures the __shared__ variables in the symbol table and
//      patches their sizes into the object's padsim_static_smem_ array.
//
// The include folder (emu.h, module_main.h, padsim.h) is "include" next to
// this library (found with dladdr).
#include "padsim.h"

#include <dirent.h>
#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <ftw.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

extern char** environ;

namespace {

// nvrtcResult (nvrtc.h).
enum {
    NVRTC_SUCCESS = 0,
    NVRTC_ERROR_OUT_OF_MEMORY = 1,
    NVRTC_ERROR_PROGRAM_CREATION_FAILURE = 2,
    NVRTC_ERROR_INVALID_INPUT = 3,
    NVRTC_ERROR_INVALID_PROGRAM = 4,
    NVRTC_ERROR_INVALID_OPTION = 5,
    NVRTC_ERROR_COMPILATION = 6,
    NVRTC_ERROR_BUILTIN_OPERATION_FAILURE = 7,
    NVRTC_ERROR_NO_NAME_EXPRESSIONS_AFTER_COMPILATION = 8,
    NVRTC_ERROR_NO_LOWERED_NAMES_BEFORE_COMPILATION = 9,
    NVRTC_ERROR_NAME_EXPRESSION_NOT_VALID = 10,
    NVRTC_ERROR_INTERNAL_ERROR = 11,
    NVRTC_ERROR_TIME_FILE_WRITE_FAILED = 12,
};

const char* const kResultNames[] = {
    "NVRTC_SUCCESS",
    "NVRTC_ERROR_OUT_OF_MEMORY",
    "NVRTC_ERROR_PROGRAM_CREATION_FAILURE",
    "NVRTC_ERROR_INVALID_INPUT",
    "NVRTC_ERROR_INVALID_PROGRAM",
    "NVRTC_ERROR_INVALID_OPTION",
    "NVRTC_ERROR_COMPILATION",
    "NVRTC_ERROR_BUILTIN_OPERATION_FAILURE",
    "NVRTC_ERROR_NO_NAME_EXPRESSIONS_AFTER_COMPILATION",
    "NVRTC_ERROR_NO_LOWERED_NAMES_BEFORE_COMPILATION",
    "NVRTC_ERROR_NAME_EXPRESSION_NOT_VALID",
    "NVRTC_ERROR_INTERNAL_ERROR",
    "NVRTC_ERROR_TIME_FILE_WRITE_FAILED",
};

// ---- SHA-256 (FIPS 180-4), for cache keys ------------------------------------

struct Sha256 {
    uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    unsigned char buf[64];
    size_t used = 0;
    uint64_t total = 0;

    static uint32_t rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

    void block(const unsigned char* p) {
        static const uint32_t k[64] = {
            0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be,
            0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa,
            0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85,
            0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3,
            0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f,
            0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};
        uint32_t w[64];
        for (int i = 0; i < 16; i++) w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
        for (int i = 16; i < 64; i++) {
            uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
            uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16] + s0 + w[i - 7] + s1;
        }
        uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
        for (int i = 0; i < 64; i++) {
            uint32_t t1 = hh + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + k[i] + w[i];
            uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
            hh = g, g = f, f = e, e = d + t1, d = c, c = b, b = a, a = t1 + t2;
        }
        h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e, h[5] += f, h[6] += g, h[7] += hh;
    }
    void update(const void* data, size_t n) {
        const unsigned char* p = static_cast<const unsigned char*>(data);
        total += n;
        while (n > 0) {
            size_t take = std::min(n, 64 - used);
            std::memcpy(buf + used, p, take);
            used += take, p += take, n -= take;
            if (used == 64) block(buf), used = 0;
        }
    }
    // field adds a length-prefixed string, so concatenations cannot collide.
    void field(const std::string& s) {
        uint64_t n = s.size();
        update(&n, 8);
        update(s.data(), s.size());
    }
    std::string hex() {
        uint64_t bits = total * 8;
        unsigned char pad = 0x80;
        update(&pad, 1);
        unsigned char zero = 0;
        while (used != 56) update(&zero, 1);
        unsigned char len[8];
        for (int i = 0; i < 8; i++) len[i] = (unsigned char)(bits >> (56 - 8 * i));
        update(len, 8);
        static const char* digits = "0123456789abcdef";
        std::string out;
        for (uint32_t v : h)
            for (int i = 28; i >= 0; i -= 4) out += digits[(v >> i) & 15];
        return out;
    }
};

// ---- files and processes -----------------------------------------------------

bool read_file(const std::string& path, std::string& out) {
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    out.clear();
    char tmp[65536];
    for (;;) {
        ssize_t n = read(fd, tmp, sizeof tmp);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            close(fd);
            return false;
        }
        if (n == 0) break;
        out.append(tmp, (size_t)n);
    }
    close(fd);
    return true;
}

bool write_file(const std::string& path, const std::string& data) {
    int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return false;
    size_t off = 0;
    while (off < data.size()) {
        ssize_t n = write(fd, data.data() + off, data.size() - off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            close(fd);
            return false;
        }
        off += (size_t)n;
    }
    return close(fd) == 0;
}

// write_atomic writes through a temporary file and a rename, so that a
// parallel reader (another test process sharing the cache) sees the whole
// file or none.
bool write_atomic(const std::string& path, const std::string& data) {
    char suffix[64];
    std::snprintf(suffix, sizeof suffix, ".tmp-%d-%lx", (int)getpid(), (unsigned long)random());
    std::string tmp = path + suffix;
    if (!write_file(tmp, data)) {
        unlink(tmp.c_str());
        return false;
    }
    if (rename(tmp.c_str(), path.c_str()) != 0) {
        unlink(tmp.c_str());
        return false;
    }
    return true;
}

void mkdirs(const std::string& dir) {
    for (size_t i = 1; i <= dir.size(); i++) {
        if (i == dir.size() || dir[i] == '/') mkdir(dir.substr(0, i).c_str(), 0755);
    }
}

int rm_entry(const char* path, const struct stat*, int, struct FTW*) { return remove(path); }
void remove_tree(const std::string& dir) { nftw(dir.c_str(), rm_entry, 16, FTW_DEPTH | FTW_PHYS); }

std::string dirname_of(const std::string& p) {
    size_t i = p.rfind('/');
    return i == std::string::npos ? std::string(".") : (i == 0 ? std::string("/") : p.substr(0, i));
}

// run spawns argv (searched on PATH) with stdout and stderr into one pipe,
// and returns its exit status (-1: could not run) with the output. The
// child gets LC_ALL=C, for plain ASCII messages.
int run(const std::vector<std::string>& argv, std::string& output) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) return -1;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 2);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    std::vector<std::string> envs;
    for (char** e = environ; e && *e; e++) {
        if (!std::strncmp(*e, "LC_ALL=", 7) || !std::strncmp(*e, "GCC_COLORS=", 11)) continue;
        envs.push_back(*e);
    }
    envs.push_back("LC_ALL=C");
    std::vector<char*> envp;
    for (std::string& e : envs) envp.push_back(e.data());
    envp.push_back(nullptr);
    pid_t pid;
    int rc = posix_spawnp(&pid, args[0], &fa, nullptr, args.data(), envp.data());
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    if (rc != 0) {
        close(fds[0]);
        output = std::string("cannot run ") + argv[0] + ": " + std::strerror(rc) + "\n";
        return -1;
    }
    char tmp[8192];
    for (;;) {
        ssize_t n = read(fds[0], tmp, sizeof tmp);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        output.append(tmp, (size_t)n);
    }
    close(fds[0]);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0) {
        if (errno != EINTR) return -1;
    }
    if (WIFEXITED(st)) return WEXITSTATUS(st);
    output += "compiler killed by signal " + std::to_string(WTERMSIG(st)) + "\n";
    return -1;
}

// ---- the environment: compiler, include folder, cache -----------------------

std::string library_dir() {
    Dl_info info;
    if (dladdr(reinterpret_cast<void*>(&library_dir), &info) && info.dli_fname) return dirname_of(info.dli_fname);
    return ".";
}

std::string compiler() {
    const char* c = std::getenv("PAD_CUDASIM_CXX");
    if (c && *c) return c;
    for (const char* name : {"g++", "c++"}) {
        const char* path = std::getenv("PATH");
        std::string p = path ? path : "/usr/local/bin:/usr/bin:/bin";
        size_t start = 0;
        while (start <= p.size()) {
            size_t end = p.find(':', start);
            if (end == std::string::npos) end = p.size();
            std::string cand = p.substr(start, end - start) + "/" + name;
            if (access(cand.c_str(), X_OK) == 0) return name;
            start = end + 1;
        }
    }
    return "g++";
}

// compiler_version returns the compiler's --version output (part of the
// cache key), once per compiler per process.
std::string compiler_version(const std::string& cxx) {
    static std::mutex mu;
    static std::map<std::string, std::string> seen;
    std::lock_guard<std::mutex> lock(mu);
    auto it = seen.find(cxx);
    if (it != seen.end()) return it->second;
    std::string out;
    int rc = run({cxx, "--version"}, out);
    if (rc != 0) out = "unknown:" + out;
    seen[cxx] = out;
    return out;
}

bool have_fma() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("fma");
#else
    return false;
#endif
}

// ---- options -----------------------------------------------------------------

struct Options {
    std::string arch = "compute_75";  // NVRTC 13's default (a virtual architecture)
    bool real = false;                // sm_XY: a CUBIN is produced
    int cc = 75;                      // compute capability * 10 (for __CUDA_ARCH__)
    bool fmad = true;
    bool no_warnings = false;
    std::vector<std::string> macro_lines;  // "#define A 1" / "#undef B", in order
    std::vector<std::string> include_paths;
    std::vector<std::string> pre_includes;
};

bool known_cc(int cc) {
    static const int ccs[] = {50, 52, 53, 60, 61, 62, 70, 72, 75, 80, 86, 87, 88, 89, 90, 100, 101, 103, 110, 120, 121};
    return std::find(std::begin(ccs), std::end(ccs), cc) != std::end(ccs);
}

// parse_arch accepts sm_XY / compute_XY (with NVIDIA's a/f suffixes from
// sm_90 on) for the real architectures sm_50 and later.
bool parse_arch(const std::string& v, Options& o) {
    std::string digits;
    bool real;
    if (v.rfind("sm_", 0) == 0) {
        digits = v.substr(3), real = true;
    } else if (v.rfind("compute_", 0) == 0) {
        digits = v.substr(8), real = false;
    } else {
        return false;
    }
    if (!digits.empty() && (digits.back() == 'a' || digits.back() == 'f')) digits.pop_back();
    if (digits.empty() || digits.size() > 3 || !std::all_of(digits.begin(), digits.end(), ::isdigit)) return false;
    int cc = std::atoi(digits.c_str());
    if (!known_cc(cc)) return false;
    if (v.size() > digits.size() + (real ? 3 : 8) && cc < 90) return false;  // a suffix before sm_90
    o.arch = v, o.real = real, o.cc = cc;
    return true;
}

bool parse_bool(const std::string& v, bool& out) {
    if (v == "true") return out = true, true;
    if (v == "false") return out = false, true;
    return false;
}

// parse_options reads NVRTC's options; on failure it writes the log line.
int parse_options(int n, const char* const* opts, Options& o, std::string& log) {
    auto bad = [&](const std::string& opt, const std::string& why) {
        log += "nvrtc: error: " + why + ": '" + opt + "'\n";
        return NVRTC_ERROR_INVALID_OPTION;
    };
    for (int i = 0; i < n; i++) {
        if (!opts || !opts[i]) return NVRTC_ERROR_INVALID_INPUT;
        std::string a = opts[i];
        // value returns the value of a "--name=v" / "-name=v" / "--name v"
        // / "-Xv" option whose spellings are names (each with its dashes).
        auto value = [&](std::initializer_list<const char*> names, std::string& v, bool joined_short = false) {
            for (const char* nm : names) {
                std::string s = nm;
                if (a == s) {
                    if (i + 1 >= n || !opts[i + 1]) return false;
                    v = opts[++i];
                    return true;
                }
                if (a.rfind(s + "=", 0) == 0) {
                    v = a.substr(s.size() + 1);
                    return true;
                }
                if (joined_short && s.size() == 2 && a.size() > 2 && a.rfind(s, 0) == 0) {
                    v = a.substr(2);
                    return true;
                }
            }
            return false;
        };
        std::string v;
        bool flag;
        if (value({"--gpu-architecture", "-arch"}, v)) {
            if (!parse_arch(v, o)) return bad(a, "invalid value for --gpu-architecture (-arch)");
        } else if (value({"--fmad", "-fmad"}, v)) {
            if (!parse_bool(v, o.fmad)) return bad(a, "invalid value for --fmad (-fmad)");
        } else if (value({"--std", "-std"}, v)) {
            if (v != "c++11" && v != "c++14" && v != "c++17" && v != "c++20") return bad(a, "invalid value for --std (-std)");
        } else if (value({"--define-macro", "-D"}, v, true)) {
            if (v.empty()) return bad(a, "missing macro name");
            size_t eq = v.find('=');
            o.macro_lines.push_back(eq == std::string::npos ? "#define " + v + " 1" : "#define " + v.substr(0, eq) + " " + v.substr(eq + 1));
        } else if (value({"--undefine-macro", "-U"}, v, true)) {
            o.macro_lines.push_back("#undef " + v);
        } else if (value({"--include-path", "-I"}, v, true)) {
            o.include_paths.push_back(v);
        } else if (value({"--pre-include", "-include"}, v)) {
            o.pre_includes.push_back(v);
        } else if (value({"--ftz", "-ftz", "--prec-div", "-prec-div", "--prec-sqrt", "-prec-sqrt", "--relocatable-device-code", "-rdc",
                          "--extensible-whole-program", "-ewp"},
                         v)) {
            if (!parse_bool(v, flag)) return bad(a, "invalid value (want true or false)");
        } else if (value({"-dopt", "--dopt"}, v)) {
            if (v != "on" && v != "off") return bad(a, "invalid value for -dopt (want on or off)");
        } else if (value({"--maxrregcount", "-maxrregcount"}, v)) {
            if (v.empty() || !std::all_of(v.begin(), v.end(), ::isdigit)) return bad(a, "invalid value for --maxrregcount");
        } else if (value({"--ptxas-options", "-Xptxas", "--diag-suppress", "-diag-suppress", "--diag-warn", "-diag-warn", "--diag-error",
                          "-diag-error"},
                         v)) {
            // Accepted; the simulation has no ptxas and no EDG diagnostics.
        } else if (a == "-w" || a == "--disable-warnings") {
            o.no_warnings = true;
        } else if (a == "-default-device" || a == "--device-as-default-execution-space" || a == "-lineinfo" ||
                   a == "--generate-line-info" || a == "--use_fast_math" || a == "-use_fast_math" || a == "-G" ||
                   a == "--device-debug" || a == "--restrict" || a == "-restrict" || a == "--extra-device-vectorization" ||
                   a == "-extra-device-vectorization" || a == "-dlto" || a == "--dlink-time-opt" || a == "--device-int128" ||
                   a == "-device-int128" || a == "-Werror=all-warnings" || a == "--Werror=all-warnings") {
            // Accepted: they change code generation or debugging on a GPU,
            // not what the simulation computes.
        } else {
            return bad(a, "unrecognized option");
        }
    }
    return NVRTC_SUCCESS;
}

// ---- the source scan ---------------------------------------------------------

enum TokKind { kIdent, kString, kNumber, kPunct, kDirective };
struct Tok {
    TokKind kind;
    std::string text;
    size_t pos, end;  // byte range in the source
};

// lex splits C++ source into tokens, dropping comments and whitespace; a
// preprocessor directive (with its continuation lines) is one token.
std::vector<Tok> lex(const std::string& s, bool directives = true) {
    std::vector<Tok> out;
    size_t i = 0, n = s.size();
    bool line_start = true;
    auto ident_char = [](char c) { return std::isalnum((unsigned char)c) || c == '_' || c == '$'; };
    while (i < n) {
        char c = s[i];
        if (c == '\n') {
            line_start = true, i++;
            continue;
        }
        if (std::isspace((unsigned char)c)) {
            i++;
            continue;
        }
        if (c == '\\' && i + 1 < n && s[i + 1] == '\n') {
            i += 2;
            continue;
        }
        if (c == '/' && i + 1 < n && s[i + 1] == '/') {
            while (i < n && s[i] != '\n') i++;
            continue;
        }
        if (c == '/' && i + 1 < n && s[i + 1] == '*') {
            size_t e = s.find("*/", i + 2);
            i = e == std::string::npos ? n : e + 2;
            continue;
        }
        size_t start = i;
        if (c == '#' && line_start && directives) {
            // To the end of the line, joining continuations, without comments.
            std::string text;
            while (i < n && s[i] != '\n') {
                if (s[i] == '\\' && i + 1 < n && s[i + 1] == '\n') {
                    i += 2, text += ' ';
                    continue;
                }
                if (s[i] == '/' && i + 1 < n && s[i + 1] == '/') {
                    while (i < n && s[i] != '\n') i++;
                    break;
                }
                if (s[i] == '/' && i + 1 < n && s[i + 1] == '*') {
                    size_t e = s.find("*/", i + 2);
                    i = e == std::string::npos ? n : e + 2;
                    text += ' ';
                    continue;
                }
                text += s[i++];
            }
            out.push_back({kDirective, text, start, i});
            continue;
        }
        line_start = false;
        if (ident_char(c) && !std::isdigit((unsigned char)c)) {
            while (i < n && ident_char(s[i])) i++;
            std::string id = s.substr(start, i - start);
            // A raw string literal: R"delim( ... )delim" (with a prefix).
            if (i < n && s[i] == '"' && !id.empty() && id.back() == 'R' && (id == "R" || id == "u8R" || id == "uR" || id == "UR" || id == "LR")) {
                size_t open = s.find('(', i);
                if (open != std::string::npos) {
                    std::string close = ")" + s.substr(i + 1, open - i - 1) + "\"";
                    size_t e = s.find(close, open);
                    i = e == std::string::npos ? n : e + close.size();
                    out.push_back({kString, s.substr(start, i - start), start, i});
                    continue;
                }
            }
            if (i < n && (s[i] == '"' || s[i] == '\'') && (id == "u8" || id == "u" || id == "U" || id == "L")) {
                // A prefixed literal: lexed below as one string.
            } else {
                out.push_back({kIdent, id, start, i});
                continue;
            }
            c = s[i];
        }
        if (c == '"' || c == '\'') {
            char q = c;
            i++;
            while (i < n && s[i] != q && s[i] != '\n') {
                if (s[i] == '\\') i++;
                i++;
            }
            if (i < n && s[i] == q) i++;
            out.push_back({kString, s.substr(start, i - start), start, i});
            continue;
        }
        if (std::isdigit((unsigned char)c) || (c == '.' && i + 1 < n && std::isdigit((unsigned char)s[i + 1]))) {
            while (i < n) {
                char d = s[i];
                if (ident_char(d) || d == '.' || d == '\'') {
                    i++;
                } else if ((d == '+' || d == '-') && (s[i - 1] == 'e' || s[i - 1] == 'E' || s[i - 1] == 'p' || s[i - 1] == 'P')) {
                    i++;
                } else {
                    break;
                }
            }
            out.push_back({kNumber, s.substr(start, i - start), start, i});
            continue;
        }
        i++;
        out.push_back({kPunct, std::string(1, c), start, i});
    }
    return out;
}

// is_sync names what makes threads wait for each other: barriers, warp
// shuffles, votes and matches, cooperative groups.
bool is_sync(const std::string& id) {
    static const char* prefixes[] = {"__sync", "__shfl", "__ballot", "__all_sync", "__any_sync", "__uni_sync", "__match", "__reduce_",
                                     "__barrier", "this_thread_block", "tiled_partition", "this_grid", "coalesced_threads", "cooperative_groups"};
    for (const char* p : prefixes)
        if (id.rfind(p, 0) == 0) return true;
    return id == "sync" || id == "bar_sync";
}

struct KernelDef {
    std::string name;       // the table's name: the plain identifier
    std::string qualified;  // how the registry names it, e.g. ::ns::k
};

struct SharedDecl {
    std::string var, owner;  // owner: the enclosing function, "" at file scope
};

struct Edit {
    size_t pos, end;
    std::string text;
};

struct Scan {
    std::vector<KernelDef> kernels;
    std::map<std::string, std::set<std::string>> defs;  // function, class or macro → identifiers it uses
    std::set<std::string> anon;                         // identifiers of bodies without a name
    std::vector<SharedDecl> shared;
    std::vector<std::string> includes;  // what #include names
    std::vector<std::string> template_kernels;
};

// join writes tokens back as text, a space only between words.
std::string join(const std::vector<Tok>& t, size_t from, size_t to) {
    std::string out;
    for (size_t i = from; i < to; i++) {
        bool word = t[i].kind == kIdent || t[i].kind == kNumber;
        if (!out.empty() && word && (std::isalnum((unsigned char)out.back()) || out.back() == '_')) out += ' ';
        out += t[i].text;
    }
    return out;
}

// skip_group returns the index after the parenthesised group at t[i]
// (which is "(").
size_t skip_group(const std::vector<Tok>& t, size_t i, size_t end) {
    int depth = 0;
    for (; i < end; i++) {
        if (t[i].kind != kPunct) continue;
        if (t[i].text == "(") depth++;
        if (t[i].text == ")" && --depth == 0) return i + 1;
    }
    return end;
}

bool is_attr(const std::string& id) {
    return id == "__launch_bounds__" || id == "__attribute__" || id == "__align__" || id == "alignas" || id == "__declspec" ||
           id == "decltype" || id == "noexcept" || id == "__maxnreg__" || id == "__cluster_dims__";
}

// rewrite_dynamic_shared turns the extern __shared__ declaration of
// t[from..semi] into a read of the launch's buffer (emu::dyn_smem), on as
// many lines as it had.
bool rewrite_dynamic_shared(const std::string& src, const std::vector<Tok>& t, size_t from, size_t semi, bool in_function,
                            std::vector<Edit>& edits) {
    std::vector<Tok> type;
    std::string name;
    for (size_t i = from; i < semi; i++) {
        const Tok& k = t[i];
        if (k.kind == kIdent && (k.text == "extern" || k.text == "__shared__")) continue;
        if (k.kind == kIdent && is_attr(k.text) && i + 1 < semi && t[i + 1].text == "(") {
            i = skip_group(t, i + 1, semi) - 1;
            continue;
        }
        if (k.kind == kPunct && k.text == "[") {
            if (type.empty() || type.back().kind != kIdent) return false;
            name = type.back().text;
            type.pop_back();
            // The rest: "]" and maybe attributes.
            break;
        }
        type.push_back(k);
    }
    if (name.empty() || type.empty()) return false;
    std::string ty = join(type, 0, type.size());
    std::string text = in_function ? ty + "* " + name + " = reinterpret_cast<" + ty + "*>(::emu::dyn_smem);"
                                   : "[[maybe_unused]] static constexpr ::emu::DynShared<" + ty + "> " + name + "{};";
    size_t pos = t[from].pos, end = t[semi].end;
    text += std::string((size_t)std::count(src.begin() + pos, src.begin() + end, '\n'), '\n');
    edits.push_back({pos, end, text});
    return true;
}

// scan_source reads one file of the program into sc and returns the edits
// that rewrite its extern __shared__ declarations.
std::vector<Edit> scan_source(const std::string& src, Scan& sc) {
    enum Kind { NS, LINK, FUNC, CLASS, OTHER };
    struct Frame {
        Kind kind;
        std::string name;   // namespace name / function / class
        std::string owner;  // whose identifiers the body holds
    };
    std::vector<Edit> edits;
    std::vector<Tok> t = lex(src);
    std::vector<Frame> stack;
    size_t stmt = 0;  // first token of the current declaration at file scope
    auto in_body = [&] { return !stack.empty() && stack.back().kind != NS && stack.back().kind != LINK; };
    auto extern_c = [&] {
        for (const Frame& f : stack)
            if (f.kind == LINK && f.name == "C") return true;
        return false;
    };
    for (size_t i = 0; i < t.size(); i++) {
        const Tok& k = t[i];
        if (k.kind == kDirective) {
            std::vector<Tok> d = lex(k.text.substr(1), false);
            if (d.size() >= 2 && d[0].text == "define" && d[1].kind == kIdent) {
                std::set<std::string>& ids = sc.defs[d[1].text];
                for (size_t j = 2; j < d.size(); j++)
                    if (d[j].kind == kIdent) ids.insert(d[j].text);
            } else if (d.size() >= 2 && d[0].text == "include") {
                std::string target = d[1].text;
                if (d[1].kind == kString && target.size() >= 2) {
                    target = target.substr(1, target.size() - 2);
                } else {
                    target = join(d, 1, d.size());
                    if (target.size() >= 2 && target.front() == '<') target = target.substr(1, target.size() - 2);
                }
                sc.includes.push_back(target);
            }
            continue;
        }
        if (k.kind == kIdent && k.text == "__shared__") {
            // Its declaration: up to the ";" at this level.
            size_t semi = i;
            int depth = 0;
            while (semi < t.size() && !(depth == 0 && t[semi].text == ";")) {
                if (t[semi].text == "(" || t[semi].text == "[" || t[semi].text == "{") depth++;
                if (t[semi].text == ")" || t[semi].text == "]" || t[semi].text == "}") depth--;
                semi++;
            }
            bool is_extern = (i > 0 && t[i - 1].text == "extern") || (i + 1 < t.size() && t[i + 1].text == "extern");
            std::string owner = in_body() ? stack.back().owner : "";
            if (is_extern && semi < t.size()) {
                size_t from = (i > 0 && t[i - 1].text == "extern") ? i - 1 : i;
                rewrite_dynamic_shared(src, t, from, semi, in_body(), edits);
            } else {
                // The variable: the word before the first "[", "=", "," or ";"
                // outside parentheses.
                std::string var;
                for (size_t j = i + 1; j <= semi && j < t.size(); j++) {
                    if (t[j].kind == kIdent && is_attr(t[j].text) && j + 1 < t.size() && t[j + 1].text == "(") {
                        j = skip_group(t, j + 1, semi) - 1;
                        continue;
                    }
                    if (t[j].text == "[" || t[j].text == "=" || t[j].text == "," || t[j].text == ";" || t[j].text == "{") {
                        if (t[j - 1].kind == kIdent) var = t[j - 1].text;
                        break;
                    }
                }
                if (!var.empty()) sc.shared.push_back({var, owner});
            }
        }
        if (k.kind == kPunct && k.text == "{") {
            if (in_body()) {
                stack.push_back({OTHER, "", stack.back().owner});
                continue;
            }
            // A declaration at file scope opens a body: what is it?
            std::vector<Tok> d;
            for (size_t j = stmt; j < i; j++)
                if (t[j].kind != kDirective) d.push_back(t[j]);
            stmt = i + 1;
            bool has_ns = false, has_class = false, has_eq = false, has_template = false, global = false, ext_c = false;
            std::string ns_name, class_name, fn_name;
            int paren = 0;
            for (size_t j = 0; j < d.size(); j++) {
                const std::string& w = d[j].text;
                if (d[j].kind == kIdent && is_attr(w) && j + 1 < d.size() && d[j + 1].text == "(") {
                    j = skip_group(d, j + 1, d.size()) - 1;
                    continue;
                }
                if (w == "(") {
                    if (paren == 0 && fn_name.empty() && j > 0 && d[j - 1].kind == kIdent && !has_eq && !has_class)
                        fn_name = d[j - 1].text;
                    paren++;
                } else if (w == ")") {
                    paren--;
                }
                if (paren > 0) continue;
                if (w == "namespace") has_ns = true, ns_name = j + 1 < d.size() && d[j + 1].kind == kIdent ? d[j + 1].text : "";
                if ((w == "struct" || w == "class" || w == "union" || w == "enum") && fn_name.empty()) {
                    has_class = true;
                    for (size_t m = j + 1; m < d.size(); m++) {
                        if (d[m].kind == kIdent && is_attr(d[m].text) && m + 1 < d.size() && d[m + 1].text == "(") {
                            m = skip_group(d, m + 1, d.size()) - 1;
                            continue;
                        }
                        if (d[m].kind == kIdent && d[m].text != "class" && d[m].text != "struct") {
                            class_name = d[m].text;
                            break;
                        }
                        if (d[m].kind != kIdent) break;
                    }
                }
                if (w == "=" && fn_name.empty()) has_eq = true;
                if (w == "template") has_template = true;
                if (w == "__global__") global = true;
                if (w == "extern" && j + 1 < d.size() && d[j + 1].kind == kString) ext_c = d[j + 1].text == "\"C\"";
            }
            if (d.size() == 2 && d[0].text == "extern" && d[1].kind == kString) {
                stack.push_back({LINK, d[1].text == "\"C\"" ? "C" : d[1].text, ""});
            } else if (has_ns && fn_name.empty()) {
                stack.push_back({NS, ns_name, ""});
            } else if (!fn_name.empty() && !has_class) {
                stack.push_back({FUNC, fn_name, fn_name});
                std::set<std::string>& ids = sc.defs[fn_name];
                for (const Tok& w : d)
                    if (w.kind == kIdent) ids.insert(w.text);
                if (global && has_template) {
                    sc.template_kernels.push_back(fn_name);
                } else if (global) {
                    (void)ext_c;
                    (void)extern_c;
                    std::string q;
                    for (const Frame& f : stack)
                        if (f.kind == NS && !f.name.empty()) q += "::" + f.name;
                    q += "::" + fn_name;
                    bool dup = false;
                    for (const KernelDef& kd : sc.kernels) dup = dup || kd.name == fn_name;
                    if (!dup) sc.kernels.push_back({fn_name, q});
                }
            } else if (has_class && !class_name.empty()) {
                stack.push_back({CLASS, class_name, class_name});
            } else {
                stack.push_back({OTHER, "", ""});
            }
            continue;
        }
        if (k.kind == kPunct && k.text == "}") {
            if (!stack.empty()) stack.pop_back();
            if (!in_body()) stmt = i + 1;
            continue;
        }
        if (k.kind == kPunct && k.text == ";" && !in_body()) {
            stmt = i + 1;
            continue;
        }
        if (k.kind == kIdent && in_body()) {
            const std::string& owner = stack.back().owner;
            if (owner.empty())
                sc.anon.insert(k.text);
            else
                sc.defs[owner].insert(k.text);
        }
    }
    return edits;
}

std::string apply_edits(const std::string& src, std::vector<Edit> edits) {
    std::sort(edits.begin(), edits.end(), [](const Edit& a, const Edit& b) { return a.pos < b.pos; });
    std::string out;
    size_t at = 0;
    for (const Edit& e : edits) {
        if (e.pos < at) continue;
        out.append(src, at, e.pos - at);
        out += e.text;
        at = e.end;
    }
    out.append(src, at, std::string::npos);
    return out;
}

// reach returns every identifier a kernel can reach through the functions,
// classes and macros of the program.
std::set<std::string> reach(const Scan& sc, const std::string& kernel) {
    std::set<std::string> seen{kernel};
    std::vector<std::string> todo{kernel};
    while (!todo.empty()) {
        std::string id = todo.back();
        todo.pop_back();
        auto it = sc.defs.find(id);
        if (it == sc.defs.end()) continue;
        for (const std::string& x : it->second)
            if (seen.insert(x).second) todo.push_back(x);
    }
    return seen;
}

// ---- ELF reading (the compiled shared object) --------------------------------

struct Elf {
    const std::string& b;
    const Elf64_Ehdr* eh = nullptr;
    const Elf64_Shdr* sh = nullptr;
    explicit Elf(const std::string& bytes) : b(bytes) {
        if (b.size() < sizeof(Elf64_Ehdr) || std::memcmp(b.data(), ELFMAG, SELFMAG) != 0 || b[EI_CLASS] != ELFCLASS64) return;
        eh = reinterpret_cast<const Elf64_Ehdr*>(b.data());
        if (eh->e_shoff == 0 || eh->e_shoff + (uint64_t)eh->e_shnum * sizeof(Elf64_Shdr) > b.size()) {
            eh = nullptr;
            return;
        }
        sh = reinterpret_cast<const Elf64_Shdr*>(b.data() + eh->e_shoff);
    }
    bool ok() const { return eh != nullptr; }
    std::string sec_name(const Elf64_Shdr& s) const {
        const Elf64_Shdr& str = sh[eh->e_shstrndx];
        return std::string(b.data() + str.sh_offset + s.sh_name);
    }
    const Elf64_Shdr* section(const std::string& name) const {
        for (int i = 0; i < eh->e_shnum; i++)
            if (sec_name(sh[i]) == name) return &sh[i];
        return nullptr;
    }
    std::string bytes(const Elf64_Shdr& s) const {
        if (s.sh_type == SHT_NOBITS || s.sh_offset + s.sh_size > b.size()) return "";
        return b.substr(s.sh_offset, s.sh_size);
    }
    // each_symbol calls f(name, symbol) for the static symbol table.
    template <class F>
    void each_symbol(F f) const {
        const Elf64_Shdr* st = section(".symtab");
        if (!st || st->sh_link >= eh->e_shnum) return;
        const Elf64_Shdr& strs = sh[st->sh_link];
        size_t n = st->sh_size / sizeof(Elf64_Sym);
        for (size_t i = 0; i < n; i++) {
            const Elf64_Sym& s = *reinterpret_cast<const Elf64_Sym*>(b.data() + st->sh_offset + i * sizeof(Elf64_Sym));
            if (s.st_name >= strs.sh_size) continue;
            f(std::string(b.data() + strs.sh_offset + s.st_name), s);
        }
    }
    // file_offset returns where symbol s's bytes are in the file, or 0.
    uint64_t file_offset(const Elf64_Sym& s) const {
        if (s.st_shndx == SHN_UNDEF || s.st_shndx >= eh->e_shnum) return 0;
        const Elf64_Shdr& sec = sh[s.st_shndx];
        if (sec.sh_type == SHT_NOBITS || s.st_value < sec.sh_addr) return 0;
        return sec.sh_offset + (s.st_value - sec.sh_addr);
    }
};

// shared_symbol reports whether an object symbol is the __shared__ variable
// d: "var" at file scope (or a namespace's ..."<len>var"E), a static local
// "_ZZ...<len>owner...E<len>var" (maybe with a discriminator "_N").
bool shared_symbol(const std::string& sym, const SharedDecl& d) {
    std::string tail = std::to_string(d.var.size()) + d.var;
    if (d.owner.empty()) return sym == d.var || (sym.rfind("_Z", 0) == 0 && sym.size() > tail.size() && sym.find(tail + "E") != std::string::npos);
    if (sym.rfind("_ZZ", 0) != 0) return false;
    if (sym.find(std::to_string(d.owner.size()) + d.owner) == std::string::npos) return false;
    size_t at = sym.rfind("E" + tail);
    if (at == std::string::npos) return false;
    std::string rest = sym.substr(at + 1 + tail.size());
    return rest.empty() || (rest[0] == '_' && std::all_of(rest.begin() + 1, rest.end(), ::isdigit));
}

// ---- programs ----------------------------------------------------------------

struct Program {
    std::string src, name;
    std::vector<std::pair<std::string, std::string>> headers;  // name, contents
    bool compiled = false;
    std::string log;
    std::string image;  // empty for a virtual architecture
    std::string ptx;    // with its NUL
};

std::mutex programs_mu;
std::set<Program*> programs;

Program* lookup(void* p) {
    std::lock_guard<std::mutex> lock(programs_mu);
    auto* prog = static_cast<Program*>(p);
    return programs.count(prog) ? prog : nullptr;
}

struct Param {
    uint32_t kind, size, align;
};
struct Signature {
    bool plain = false;
    std::vector<Param> params;
};

const char* ptx_type(const Param& p) {
    switch (p.kind) {
    case 1:
        return "u64";
    case 2:
        return p.size == 4 ? "f32" : "f64";
    case 3:
        return p.size == 1 ? "u8" : p.size == 2 ? "u16" : p.size == 4 ? "u32" : "u64";
    }
    return nullptr;
}

std::string make_ptx(const Options& o, const std::vector<KernelDef>& ks, const std::vector<Signature>& sigs, const std::string& image,
                     const std::string& program) {
    std::string arch = o.arch.substr(o.arch.find('_') + 1);
    std::string p = PADSIM_PTX_MAGIC;
    p += "//\n// Simulated PTX of pad's cudasim NVRTC for \"" + program +
         "\": the parameter lists are real, the code is the module image below.\n//\n\n";
    p += ".version 9.0\n.target sm_" + arch + "\n.address_size 64\n\n";
    for (size_t i = 0; i < ks.size(); i++) {
        const std::string& n = ks[i].name;
        p += ".visible .entry " + n + "(";
        for (size_t j = 0; j < sigs[i].params.size(); j++) {
            const Param& q = sigs[i].params[j];
            std::string pn = n + "_param_" + std::to_string(j);
            if (j) p += ", ";
            if (const char* ty = ptx_type(q))
                p += std::string(".param .") + ty + " " + pn;
            else
                p += ".param .align " + std::to_string(q.align) + " .b8 " + pn + "[" + std::to_string(q.size) + "]";
        }
        p += ")\n{\n}\n";
    }
    p += "\n// image ";
    static const char* hex = "0123456789abcdef";
    p.reserve(p.size() + 2 * image.size() + 2);
    for (unsigned char c : image) p += hex[c >> 4], p += hex[c & 15];
    p += "\n";
    p.push_back('\0');
    return p;
}

// nvrtc_log rewrites the compiler's messages into NVRTC's style:
// "bad.cu(1): error: ...", without the temporary folder and the include
// stack through the generated translation unit.
std::string nvrtc_log(const std::string& out, const std::string& tmpdir) {
    std::string text = out, prefix = tmpdir + "/";
    for (size_t at; (at = text.find(prefix)) != std::string::npos;) text.erase(at, prefix.size());
    std::string log;
    size_t start = 0;
    while (start < text.size()) {
        size_t end = text.find('\n', start);
        if (end == std::string::npos) end = text.size();
        std::string line = text.substr(start, end - start);
        start = end + 1;
        if (line.rfind("In file included from ", 0) == 0) continue;
        if (line.find_first_not_of(' ') != std::string::npos && line.find_first_not_of(' ') >= 8 &&
            line.compare(line.find_first_not_of(' '), 5, "from ") == 0)
            continue;
        // FILE:LINE:COL: kind: ... → FILE(LINE): kind: ...
        size_t c1 = line.find(':');
        if (c1 != std::string::npos && c1 > 0 && line.find(' ') > c1) {
            size_t c2 = c1 + 1;
            while (c2 < line.size() && std::isdigit((unsigned char)line[c2])) c2++;
            if (c2 > c1 + 1 && c2 < line.size() && line[c2] == ':') {
                size_t c3 = c2 + 1;
                while (c3 < line.size() && std::isdigit((unsigned char)line[c3])) c3++;
                if (c3 < line.size() && line[c3] == ':') line = line.substr(0, c1) + "(" + line.substr(c1 + 1, c2 - c1 - 1) + ")" + line.substr(c3);
                else line = line.substr(0, c1) + "(" + line.substr(c1 + 1, c2 - c1 - 1) + ")" + line.substr(c2);
            }
        }
        log += line + "\n";
    }
    return log;
}

std::string safe_name(const std::string& n) {
    std::string s;
    for (char c : n) s += (std::isalnum((unsigned char)c) || c == '.' || c == '_' || c == '-') ? c : '_';
    if (s.empty() || s[0] == '.') s = "_" + s;
    if (s == "padsim_tu.cpp" || s == "padsim.map" || s == "module.so") s = "user_" + s;
    return s;
}

std::string cstring_literal(const std::string& s) {
    std::string out = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') out += '\\';
        if (c == '\n') {
            out += "\\n";
            continue;
        }
        out += c;
    }
    return out + "\"";
}

void put32(std::string& s, uint32_t v) { s.append(reinterpret_cast<const char*>(&v), 4); }
void put64(std::string& s, uint64_t v) { s.append(reinterpret_cast<const char*>(&v), 8); }

// The cache file: magic, then three length-prefixed blobs: image, PTX, log.
const char kCacheMagic[] = "PADSIM-NVRTC-CACHE-1\n";

bool cache_load(const std::string& path, Program& p) {
    std::string b;
    if (!read_file(path, b) || b.compare(0, sizeof kCacheMagic - 1, kCacheMagic) != 0) return false;
    size_t at = sizeof kCacheMagic - 1;
    std::string parts[3];
    for (std::string& part : parts) {
        uint64_t n;
        if (at + 8 > b.size()) return false;
        std::memcpy(&n, b.data() + at, 8);
        at += 8;
        if (n > b.size() - at) return false;
        part = b.substr(at, n);
        at += n;
    }
    p.image = parts[0], p.ptx = parts[1], p.log = parts[2];
    return true;
}

void cache_store(const std::string& dir, const std::string& path, const Program& p) {
    mkdirs(dir);
    std::string b = kCacheMagic;
    for (const std::string* part : {&p.image, &p.ptx, &p.log}) {
        put64(b, part->size());
        b += *part;
    }
    write_atomic(path, b);
}

int compile(Program& p, int nopts, const char* const* opts) {
    p.compiled = false;
    p.log.clear(), p.image.clear(), p.ptx.clear();
    Options o;
    if (int rc = parse_options(nopts, opts, o, p.log)) return rc;

    const std::string inc = library_dir() + "/include";
    std::string emu_h, module_h, padsim_h;
    if (!read_file(inc + "/emu.h", emu_h) || !read_file(inc + "/module_main.h", module_h) || !read_file(inc + "/padsim.h", padsim_h)) {
        p.log = "nvrtc: error: cudasim: emu.h, module_main.h or padsim.h missing in " + inc + "\n";
        return NVRTC_ERROR_BUILTIN_OPERATION_FAILURE;
    }

    // Scan the program: the source and the headers given with it.
    Scan sc;
    std::vector<Edit> edits = scan_source(p.src, sc);
    std::vector<std::string> headers_text;
    for (auto& [hname, htext] : p.headers) headers_text.push_back(apply_edits(htext, scan_source(htext, sc)));
    std::string source = apply_edits(p.src, edits);
    bool unknown_include = false;
    for (const std::string& inc_name : sc.includes) {
        bool given = false;
        for (auto& h : p.headers) given = given || h.first == inc_name;
        unknown_include = unknown_include || !given;
    }
    for (const std::string& f : o.pre_includes) {
        bool given = false;
        for (auto& h : p.headers) given = given || h.first == f;
        unknown_include = unknown_include || !given;
    }
    bool anon_sync = std::any_of(sc.anon.begin(), sc.anon.end(), is_sync);
    std::vector<bool> plain;
    std::vector<std::set<std::string>> reached;
    for (const KernelDef& k : sc.kernels) {
        std::set<std::string> r = reach(sc, k.name);
        bool sync = unknown_include || anon_sync || std::any_of(r.begin(), r.end(), is_sync);
        plain.push_back(!sync);
        reached.push_back(std::move(r));
    }

    const std::string cxx = compiler();
    const bool fma = o.fmad && have_fma();

    // The cache key: everything the image depends on. A program including
    // files not given to nvrtcCreateProgram (from -I folders) is not
    // cached: those files are not part of the key.
    Sha256 h;
    h.field("padsim-nvrtc-1");
    h.field(cxx), h.field(compiler_version(cxx)), h.field(fma ? "fma" : "nofma");
    h.field(emu_h), h.field(module_h), h.field(padsim_h);
    h.field(p.name), h.field(p.src);
    for (auto& [hn, ht] : p.headers) h.field(hn), h.field(ht);
    for (int i = 0; i < nopts; i++) h.field(opts[i]);
    const std::string key = h.hex();
    std::string cache_dir;
    if (const char* c = std::getenv("PAD_CUDASIM_CACHE"); c && *c)
        cache_dir = c;
    else
        cache_dir = library_dir() + "/cache";
    const std::string cache_path = cache_dir + "/" + key + ".padsim";
    const bool cacheable = !unknown_include;
    if (cacheable && cache_load(cache_path, p)) {
        if (!o.real) p.image.clear();
        p.compiled = true;
        return NVRTC_SUCCESS;
    }

    // The translation unit, in a fresh folder.
    const char* tmp_root = std::getenv("TMPDIR");
    std::string tmpl = std::string(tmp_root && *tmp_root ? tmp_root : "/tmp") + "/padsim-nvrtc-XXXXXX";
    std::vector<char> tbuf(tmpl.begin(), tmpl.end());
    tbuf.push_back('\0');
    if (!mkdtemp(tbuf.data())) {
        p.log = std::string("nvrtc: error: cudasim: cannot create a temporary folder: ") + std::strerror(errno) + "\n";
        return NVRTC_ERROR_BUILTIN_OPERATION_FAILURE;
    }
    const std::string dir = tbuf.data();
    struct Cleanup {
        std::string d;
        ~Cleanup() {
            if (!std::getenv("PAD_CUDASIM_KEEP_TMP")) remove_tree(d);
        }
    } cleanup{dir};

    bool ok = true;
    for (size_t i = 0; i < p.headers.size(); i++) {
        std::string hn = p.headers[i].first;
        if (hn.empty() || hn[0] == '/' || hn.find("..") != std::string::npos) continue;
        mkdirs(dirname_of(dir + "/" + hn));
        ok = ok && write_file(dir + "/" + hn, headers_text[i]);
    }
    const std::string file = safe_name(p.name);
    std::string saved = source;
    if (file != p.name) saved = "#line 1 " + cstring_literal(p.name) + "\n" + source;
    ok = ok && write_file(dir + "/" + file, saved);

    std::string tu;
    tu += "// cudasim translation unit of " + cstring_literal(p.name) + "\n";
    tu += "#include \"emu.h\"\n#include \"module_main.h\"\n";
    tu += "#define __CUDACC__ 1\n#define __CUDACC_RTC__ 1\n#define __NVCC__ 1\n";
    tu += "#define __CUDA_ARCH__ " + std::to_string(o.cc * 10) + "\n";
    tu += "#define __CUDACC_VER_MAJOR__ " + std::to_string(PADSIM_NVRTC_MAJOR) + "\n";
    tu += "#define __CUDACC_VER_MINOR__ " + std::to_string(PADSIM_NVRTC_MINOR) + "\n#define __CUDACC_VER_BUILD__ 0\n";
    for (const std::string& m : o.macro_lines) tu += m + "\n";
    for (const std::string& f : o.pre_includes) tu += "#include " + cstring_literal(f) + "\n";
    tu += "#include " + cstring_literal(file) + "\n";
    tu += "#line 1 \"<cudasim kernel table>\"\n";
    std::string entries;
    for (size_t i = 0; i < sc.kernels.size(); i++) {
        tu += "PADSIM_KERNEL(" + std::to_string(i) + ", " + sc.kernels[i].qualified + ", " + cstring_literal(sc.kernels[i].name) + ", " +
              (plain[i] ? "true" : "false") + ")\n";
        entries += ", padsim_gen::padsim_kernel_" + std::to_string(i);
    }
    tu += "PADSIM_MODULE_END(" + std::to_string(sc.kernels.size()) + entries + ")\n";
    ok = ok && write_file(dir + "/padsim_tu.cpp", tu);
    ok = ok && write_file(dir + "/padsim.map", "{ global: padsim_module_v1; local: *; };\n");
    if (!ok) {
        p.log = "nvrtc: error: cudasim: cannot write into " + dir + "\n";
        return NVRTC_ERROR_BUILTIN_OPERATION_FAILURE;
    }

    // -fno-gnu-unique: inline variables (emu.h's state) would otherwise be
    // STB_GNU_UNIQUE symbols, shared by every module in the process and
    // keeping dlclose from unloading one; the version script makes every
    // symbol but padsim_module_v1 local.
    std::vector<std::string> argv = {cxx, "-std=c++20", "-O2", "-fPIC", "-shared", "-fvisibility=hidden", "-pthread",
                                     "-fdiagnostics-color=never", "-fno-gnu-unique"};
    if (o.fmad) {
        argv.push_back("-ffp-contract=fast");
        if (fma) argv.push_back("-mfma");
    } else {
        argv.push_back("-ffp-contract=off");
    }
    if (o.no_warnings) argv.push_back("-w");
    argv.push_back("-I" + inc);
    for (const std::string& d : o.include_paths) argv.push_back("-I" + d);
    argv.push_back("-Wl,--version-script=" + dir + "/padsim.map");
    argv.push_back("-Wl,-z,defs");
    argv.push_back("-o");
    argv.push_back(dir + "/module.so");
    argv.push_back(dir + "/padsim_tu.cpp");
    std::string out;
    int rc = run(argv, out);
    p.log = nvrtc_log(out, dir);
    if (rc != 0) {
        if (p.log.find("error") == std::string::npos) p.log += p.name + ": error: the host compiler failed (" + cxx + ")\n";
        return NVRTC_ERROR_COMPILATION;
    }
    std::string so;
    if (!read_file(dir + "/module.so", so)) {
        p.log += "nvrtc: error: cudasim: the compiler wrote no module\n";
        return NVRTC_ERROR_BUILTIN_OPERATION_FAILURE;
    }

    // Read the signatures back, measure the static shared memory.
    Elf elf(so);
    if (!elf.ok()) {
        p.log += "nvrtc: error: cudasim: the module is not a 64-bit ELF object\n";
        return NVRTC_ERROR_BUILTIN_OPERATION_FAILURE;
    }
    std::vector<Signature> sigs(sc.kernels.size());
    std::vector<bool> seen(sc.kernels.size());
    if (const Elf64_Shdr* s = elf.section("padsim_sig")) {
        std::string d = elf.bytes(*s);
        std::vector<uint32_t> w(d.size() / 4);
        std::memcpy(w.data(), d.data(), w.size() * 4);
        for (size_t i = 0; i + 4 <= w.size();) {
            if (w[i] != 0x47495350 || w[i + 1] >= sigs.size()) {
                i++;
                continue;
            }
            uint32_t idx = w[i + 1], np = w[i + 3];
            if (i + 4 + 3 * (size_t)np > w.size()) break;
            sigs[idx].plain = w[i + 2] != 0;
            sigs[idx].params.clear();
            for (uint32_t j = 0; j < np; j++) sigs[idx].params.push_back({w[i + 4 + 3 * j], w[i + 5 + 3 * j], w[i + 6 + 3 * j]});
            seen[idx] = true;
            i += 4 + (np ? 3 * (size_t)np : 1);  // a record without parameters holds one padding word
        }
    }
    for (size_t i = 0; i < sc.kernels.size(); i++) {
        if (!seen[i]) {
            p.log += "nvrtc: error: cudasim: no signature record for kernel " + sc.kernels[i].name + "\n";
            return NVRTC_ERROR_INTERNAL_ERROR;
        }
    }
    uint64_t smem_at = 0;
    std::vector<std::pair<std::string, uint64_t>> objects;  // name, size
    elf.each_symbol([&](const std::string& name, const Elf64_Sym& s) {
        if (name == "padsim_static_smem_") smem_at = elf.file_offset(s);
        if (ELF64_ST_TYPE(s.st_info) == STT_OBJECT && s.st_size > 0) objects.push_back({name, s.st_size});
    });
    if (smem_at == 0 || smem_at + 4 * (sc.kernels.size() + 1) > so.size()) {
        p.log += "nvrtc: error: cudasim: padsim_static_smem_ not found in the module\n";
        return NVRTC_ERROR_INTERNAL_ERROR;
    }
    for (size_t i = 0; i < sc.kernels.size(); i++) {
        // Every symbol of a __shared__ variable the kernel can reach: of a
        // function it reaches, or a file-scope one it names.
        uint64_t bytes = 0;
        for (const auto& [sym, size] : objects) {
            for (const SharedDecl& d : sc.shared) {
                bool reachable = d.owner.empty() ? reached[i].count(d.var) > 0 : reached[i].count(d.owner) > 0;
                if (reachable && shared_symbol(sym, d)) {
                    bytes += size;
                    break;
                }
            }
        }
        uint32_t v = (uint32_t)std::min<uint64_t>(bytes, 0xffffffffu);
        std::memcpy(&so[smem_at + 4 * (i + 1)], &v, 4);
    }

    // The image (padsim.h).
    std::string names;
    for (const KernelDef& k : sc.kernels) names += (names.empty() ? "" : ",") + k.name;
    std::string prog_name = p.name;
    std::replace(prog_name.begin(), prog_name.end(), '\n', ' ');
    std::string header = "arch=" + o.arch + "\nfmad=" + (o.fmad ? "1" : "0") + "\nprogram=" + prog_name + "\nkernels=" + names + "\n";
    std::string image = PADSIM_IMAGE_MAGIC;
    put32(image, (uint32_t)header.size());
    image += header;
    put64(image, so.size());
    image += so;

    p.ptx = make_ptx(o, sc.kernels, sigs, image, p.name);
    p.image = image;
    if (cacheable) cache_store(cache_dir, cache_path, p);
    if (!o.real) p.image.clear();  // NVRTC makes no CUBIN for a virtual architecture
    p.compiled = true;
    return NVRTC_SUCCESS;
}

}  // namespace

// ---- the API -------------------------------------------------------------------

// injected_failure: the fault fail[=FUNCTION][@N] of PAD_CUDASIM_FAULT fails
// this call. NVRTC does not link the driver (NVIDIA's does not need it); the
// simulated driver's padsim_fault is found in the process when pad loaded it.
static bool injected_failure(const char* fn) {
    using fault_fn = int (*)(const char*, const char*);
    static fault_fn f = (fault_fn)dlsym(RTLD_DEFAULT, "padsim_fault");
    return f && f("fail", fn) != 0;
}

// INJECTABLE starts every exported function but the error strings.
#define INJECTABLE \
    if (injected_failure(__func__)) return NVRTC_ERROR_INTERNAL_ERROR

extern "C" {

typedef void* nvrtcProgram;

PADSIM_EXPORT const char* nvrtcGetErrorString(int result) {
    if (result >= 0 && result < (int)(sizeof kResultNames / sizeof kResultNames[0])) return kResultNames[result];
    return "NVRTC_ERROR unknown";
}

PADSIM_EXPORT int nvrtcVersion(int* major, int* minor) {
    INJECTABLE;
    if (!major || !minor) return NVRTC_ERROR_INVALID_INPUT;
    *major = PADSIM_NVRTC_MAJOR;
    *minor = PADSIM_NVRTC_MINOR;
    return NVRTC_SUCCESS;
}

PADSIM_EXPORT int nvrtcCreateProgram(nvrtcProgram* prog, const char* src, const char* name, int numHeaders, const char* const* headers,
                                     const char* const* includeNames) {
    INJECTABLE;
    if (!prog || !src || numHeaders < 0 || (numHeaders > 0 && (!headers || !includeNames))) return NVRTC_ERROR_INVALID_INPUT;
    auto* p = new (std::nothrow) Program;
    if (!p) return NVRTC_ERROR_OUT_OF_MEMORY;
    p->src = src;
    p->name = name && *name ? name : "default_program";
    for (int i = 0; i < numHeaders; i++) {
        if (!includeNames[i]) {
            delete p;
            return NVRTC_ERROR_INVALID_INPUT;
        }
        p->headers.push_back({includeNames[i], headers[i] ? headers[i] : ""});
    }
    {
        std::lock_guard<std::mutex> lock(programs_mu);
        programs.insert(p);
    }
    *prog = p;
    return NVRTC_SUCCESS;
}

PADSIM_EXPORT int nvrtcDestroyProgram(nvrtcProgram* prog) {
    INJECTABLE;
    if (!prog) return NVRTC_ERROR_INVALID_PROGRAM;
    Program* p = static_cast<Program*>(*prog);
    {
        std::lock_guard<std::mutex> lock(programs_mu);
        if (!programs.erase(p)) return NVRTC_ERROR_INVALID_PROGRAM;
    }
    delete p;
    *prog = nullptr;
    return NVRTC_SUCCESS;
}

PADSIM_EXPORT int nvrtcCompileProgram(nvrtcProgram prog, int numOptions, const char* const* options) {
    INJECTABLE;
    Program* p = lookup(prog);
    if (!p) return NVRTC_ERROR_INVALID_PROGRAM;
    if (numOptions < 0 || (numOptions > 0 && !options)) return NVRTC_ERROR_INVALID_INPUT;
    try {
        return compile(*p, numOptions, options);
    } catch (const std::bad_alloc&) {
        return NVRTC_ERROR_OUT_OF_MEMORY;
    } catch (...) {
        return NVRTC_ERROR_INTERNAL_ERROR;
    }
}

PADSIM_EXPORT int nvrtcGetProgramLogSize(nvrtcProgram prog, size_t* size) {
    INJECTABLE;
    Program* p = lookup(prog);
    if (!p) return NVRTC_ERROR_INVALID_PROGRAM;
    if (!size) return NVRTC_ERROR_INVALID_INPUT;
    *size = p->log.size() + 1;
    return NVRTC_SUCCESS;
}

PADSIM_EXPORT int nvrtcGetProgramLog(nvrtcProgram prog, char* log) {
    INJECTABLE;
    Program* p = lookup(prog);
    if (!p) return NVRTC_ERROR_INVALID_PROGRAM;
    if (!log) return NVRTC_ERROR_INVALID_INPUT;
    std::memcpy(log, p->log.c_str(), p->log.size() + 1);
    return NVRTC_SUCCESS;
}

PADSIM_EXPORT int nvrtcGetPTXSize(nvrtcProgram prog, size_t* size) {
    INJECTABLE;
    Program* p = lookup(prog);
    if (!p || !p->compiled) return NVRTC_ERROR_INVALID_PROGRAM;
    if (!size) return NVRTC_ERROR_INVALID_INPUT;
    *size = p->ptx.size();
    return NVRTC_SUCCESS;
}

PADSIM_EXPORT int nvrtcGetPTX(nvrtcProgram prog, char* ptx) {
    INJECTABLE;
    Program* p = lookup(prog);
    if (!p || !p->compiled) return NVRTC_ERROR_INVALID_PROGRAM;
    if (!ptx) return NVRTC_ERROR_INVALID_INPUT;
    std::memcpy(ptx, p->ptx.data(), p->ptx.size());
    return NVRTC_SUCCESS;
}

// For a virtual architecture there is no CUBIN: size 0 (pad's Compile then
// says to compile for a real architecture).
PADSIM_EXPORT int nvrtcGetCUBINSize(nvrtcProgram prog, size_t* size) {
    INJECTABLE;
    Program* p = lookup(prog);
    if (!p || !p->compiled) return NVRTC_ERROR_INVALID_PROGRAM;
    if (!size) return NVRTC_ERROR_INVALID_INPUT;
    *size = p->image.size();
    return NVRTC_SUCCESS;
}

PADSIM_EXPORT int nvrtcGetCUBIN(nvrtcProgram prog, char* cubin) {
    INJECTABLE;
    Program* p = lookup(prog);
    if (!p || !p->compiled) return NVRTC_ERROR_INVALID_PROGRAM;
    if (!cubin) return NVRTC_ERROR_INVALID_INPUT;
    std::memcpy(cubin, p->image.data(), p->image.size());
    return NVRTC_SUCCESS;
}

}  // extern "C"
