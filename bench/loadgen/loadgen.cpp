// loadgen: SSE load generator for bench/compare (epoll, one thread per process, forked workers).
//
//   loadgen [options]            one measured run, JSON on stdout:
//     1. reads server/Redis CPU and RSS from /proc                     (baseline)
//     2. forks --procs workers; each opens its slice of --conns SSE connections at a bounded rate,
//        from source addresses 127.0.0.2.. (so > 60k connections fit), and parses the streams
//     3. waits until every connection got its HTTP head, then --idle-settle seconds; reads /proc
//     4. publishes at --pub-rate for --duration seconds (Redis RESP, pipelined, or HTTP POST);
//        each payload carries "t=<CLOCK_MONOTONIC ns>"; receivers record publish->receive latency
//     5. waits until deliveries stop growing; reads /proc; collects the workers' counters and
//        histograms
//   --churn C: instead of 2..5, C concurrent connect/handshake/close loops for --duration seconds.
//   --broadcasts B / --unicasts U (the plan, bench/million): instead of 4, B broadcasts one after
//     the other (each once the previous one reached every stream), then U events to users
//     u0..u(U-1); every stream's count is checked against what it was owed, and each broadcast
//     gets its own latency histogram.
//
// See bench/README.md and docs/benchmarks.md.
#include "hist.hpp"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <vector>

using namespace std::string_literals;

namespace {

int64_t now_ns(clockid_t c = CLOCK_REALTIME) {
    timespec ts;
    clock_gettime(c, &ts);
    return int64_t(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
}
int64_t mono_ns() { return now_ns(CLOCK_MONOTONIC); }

[[noreturn]] void die(const std::string& m) {
    fprintf(stderr, "loadgen: %s\n", m.c_str());
    exit(2);
}

struct options {
    std::string host = "127.0.0.1";
    int port = 8080;
    std::vector<int> ports;  // --port A,B,C: connection i goes to ports[i % n]
    std::string path = "/events?user=u{u}&topic=bench";
    int conns = 0;
    int users = 0;  // {u} = i % users (0: users = conns)
    double conn_rate = 5000;
    int max_pending = 0;  // per worker: connections not yet past their response head (0: no cap)
    int procs = 0;
    int sources = 8;
    // > 0: connection i binds source port source_ports + i / (destinations * sources) itself.
    // The kernel's own choice (IP_BIND_ADDRESS_NO_PORT) searches the ports in use with that
    // source and destination, which is quadratic: at 400,000 connections it took 79% of the
    // machine's CPU (__inet_check_established), and connects fell to 2,700/s.
    int source_ports = 0;
    double idle_settle = 0.5;
    // publisher
    std::string pub = "none";  // none | redis | http
    std::string pub_host = "127.0.0.1";
    int pub_port = 6379;
    // --pub-cluster "0-5460:7001,5461-10922:7002,...": one link per port, each command sent to
    // the port owning its key's hash slot (a Redis Cluster client with a fixed slot map).
    std::vector<std::pair<int, int>> pub_slot_ranges;  // (first slot, port), sorted; last slot implied
    std::vector<int> pub_slot_ports;
    std::string pub_cmd = "PUBLISH sse:user:u{r}";
    std::string pub_path = "/pub?ch=u{r}";
    std::string pub_json_channel;  // HTTP body {"channel":"<this>","data":"<payload>"} (gateway's POST /publish)
    int pub_users = 0;  // {r} random in [0, pub_users)
    double pub_rate = 0;
    double duration = 5;
    int payload = 64;
    double settle_max = 5;
    // churn
    int churn = 0;
    // plan (bench/million)
    int broadcasts = 0;
    std::string broadcast_cmd = "PUBLISH sse:broadcast";
    double broadcast_timeout = 60;  // per broadcast, to reach every stream
    double broadcast_gap = 1;       // quiet time between broadcasts
    int unicasts = 0;
    std::string unicast_cmd = "PUBLISH sse:user:u{s}";
    double unicast_rate = 5000;
    bool plan() const { return broadcasts > 0 || unicasts > 0; }
    // measured processes
    std::vector<int> server_pids;
    std::vector<int> redis_pids;
    double ready_timeout = 60;
};

std::string subst(const std::string& t, const char* key, long v) {
    std::string out;
    size_t k = strlen(key);
    for (size_t i = 0; i < t.size();) {
        if (t.compare(i, k, key) == 0) { out += std::to_string(v); i += k; }
        else out += t[i++];
    }
    return out;
}

// ---------- /proc ----------
// sched_slices: times the threads were switched onto a CPU (schedstat's 3rd field), i.e. wake-ups.
struct proc_sample { double cpu_s = 0; long rss_kib = 0; double sched_s = 0; long sched_slices = 0; bool sched_ok = true; };

proc_sample read_proc(int pid) {
    proc_sample s;
    char p[64];
    snprintf(p, sizeof p, "/proc/%d/stat", pid);
    if (FILE* f = fopen(p, "r")) {
        char buf[4096];
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        buf[n] = 0;
        fclose(f);
        // fields after the ')' of comm: state(3) ... utime(14) stime(15)
        if (char* c = strrchr(buf, ')')) {
            unsigned long ut = 0, st = 0;
            int field = 2;
            char* save = nullptr;
            for (char* tok = strtok_r(c + 1, " ", &save); tok; tok = strtok_r(nullptr, " ", &save)) {
                ++field;
                if (field == 14) ut = strtoul(tok, nullptr, 10);
                if (field == 15) { st = strtoul(tok, nullptr, 10); break; }
            }
            s.cpu_s = double(ut + st) / double(sysconf(_SC_CLK_TCK));
        }
    }
    snprintf(p, sizeof p, "/proc/%d/status", pid);
    if (FILE* f = fopen(p, "r")) {
        char line[256];
        while (fgets(line, sizeof line, f))
            if (strncmp(line, "VmRSS:", 6) == 0) s.rss_kib = strtol(line + 6, nullptr, 10);
        fclose(f);
    }
    return s;
}
// CPU time in s from the scheduler (sum over the process's threads), -1 if unavailable; adds the
// threads' timeslice counts to *slices.
double read_schedstat_s(int pid, long* slices) {
    char p[64];
    snprintf(p, sizeof p, "/proc/%d/task", pid);
    DIR* d = opendir(p);
    if (!d) return -1;
    double total = 0;
    bool any = false;
    while (dirent* e = readdir(d)) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        char q[128];
        snprintf(q, sizeof q, "/proc/%d/task/%s/schedstat", pid, e->d_name);
        if (FILE* f = fopen(q, "r")) {
            unsigned long long ns = 0, wait_ns = 0, n = 0;
            if (fscanf(f, "%llu %llu %llu", &ns, &wait_ns, &n) == 3) {
                total += double(ns) * 1e-9;
                *slices += long(n);
                any = true;
            }
            fclose(f);
        }
    }
    closedir(d);
    return any ? total : -1;
}

proc_sample read_procs(const std::vector<int>& pids) {
    proc_sample t;
    for (int pid : pids) {
        auto s = read_proc(pid);
        t.cpu_s += s.cpu_s;
        t.rss_kib += s.rss_kib;
        double ss = read_schedstat_s(pid, &t.sched_slices);
        if (ss < 0) t.sched_ok = false; else t.sched_s += ss;
    }
    return t;
}

// Each process's CPU seconds (scheduler time, else utime+stime): per-node figures of a cluster.
std::vector<double> read_cpu_each(const std::vector<int>& pids) {
    std::vector<double> out;
    for (int pid : pids) {
        long slices = 0;
        double ss = read_schedstat_s(pid, &slices);
        out.push_back(ss >= 0 ? ss : read_proc(pid).cpu_s);
    }
    return out;
}

// One field of /proc/meminfo in KiB (Slab: kernel objects such as sockets), -1 if absent.
long meminfo_kib(const char* field) {
    long v = -1;
    if (FILE* f = fopen("/proc/meminfo", "r")) {
        char line[256];
        size_t k = strlen(field);
        while (fgets(line, sizeof line, f))
            if (strncmp(line, field, k) == 0 && line[k] == ':') { v = strtol(line + k + 1, nullptr, 10); break; }
        fclose(f);
    }
    return v;
}

void set_nonblock(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

// Line-oriented pipe reader.
struct line_reader {
    std::string buf;
    // returns false on EOF
    bool fill(int fd) {
        char tmp[65536];
        for (;;) {
            ssize_t n = read(fd, tmp, sizeof tmp);
            if (n > 0) { buf.append(tmp, size_t(n)); continue; }
            if (n == 0) return false;
            if (errno == EINTR) continue;
            return true;  // EAGAIN
        }
    }
    bool next(std::string& line) {
        size_t p = buf.find('\n');
        if (p == std::string::npos) return false;
        line.assign(buf, 0, p);
        buf.erase(0, p + 1);
        return true;
    }
};

void write_all(int fd, const std::string& s) {
    size_t off = 0;
    while (off < s.size()) {
        ssize_t n = write(fd, s.data() + off, s.size() - off);
        if (n > 0) off += size_t(n);
        else if (n < 0 && errno == EINTR) continue;
        else if (n < 0 && errno == EAGAIN) { usleep(100); continue; }
        else return;
    }
}

// ---------- subscriber connection ----------
enum class cstate : uint8_t { connecting, head, body, closed };
enum class chst : uint8_t { size, ext, data, data_end, done };

struct conn {
    int fd = -1;
    int index = 0;
    cstate st = cstate::closed;
    bool chunked = false;
    bool has_data = false;
    bool is_position = false;  // "event: ssegw-position": where the client stands, not an event
    chst ch = chst::size;
    uint64_t ch_rem = 0;
    uint32_t events = 0;
    std::string carry;  // head bytes, or a partial SSE line
};

struct worker_stats {
    long opened = 0, established = 0, failed_connect = 0, bad_status = 0, closed_by_server = 0;
    long events = 0, data_lines = 0, bytes = 0, churn_ok = 0;
    long min_events = -1, max_events = 0;
    bench::histogram lat;
    // plan: broadcast k's publish->receive latencies (payload "b=<k> t=..."), allocated on use
    std::vector<std::unique_ptr<bench::histogram>> per_broadcast;
};

struct worker {
    const options& o;
    int lo, hi;  // connection indexes [lo, hi)
    double rate;
    int churn_slots;
    int ep = -1;
    int ctl_in, res_out;
    std::vector<conn> conns;
    worker_stats ws;
    bool measuring = false;
    bool running = true;
    int64_t now_rt = 0;  // CLOCK_MONOTONIC at the last read
    std::vector<sockaddr_in> dsts;
    std::vector<sockaddr_in> srcs;
    long next_index;
    long in_handshake = 0;  // opened, response head not yet read

    worker(const options& opt, int l, int h, double r, int cs, int ci, int ro)
        : o(opt), lo(l), hi(h), rate(r), churn_slots(cs), ctl_in(ci), res_out(ro), next_index(l) {}

    std::string request_for(int idx) {
        long u = o.users > 0 ? idx % o.users : idx;
        std::string p = subst(subst(o.path, "{u}", u), "{i}", idx);
        return "GET " + p + " HTTP/1.1\r\nHost: " + o.host + ":" + std::to_string(o.port) +
               "\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n\r\n";
    }

    bool open_conn(conn& c, int idx) {
        c = conn{};
        c.index = idx;
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) { ++ws.failed_connect; return false; }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        sockaddr_in src;
        if (o.source_ports > 0) {
            // A unique (source address, source port, destination) per index: connect() has one
            // 4-tuple to check. SO_REUSEADDR lets connected sockets share a source port.
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
            size_t d = dsts.size(), n = srcs.size();
            src = srcs[(size_t(idx) / d) % n];
            long port = o.source_ports + long(size_t(idx) / (d * n));
            if (port > 65535) { close(fd); ++ws.failed_connect; return false; }
            src.sin_port = htons(uint16_t(port));
        } else {
            setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
            src = srcs[size_t(idx) % srcs.size()];
        }
        if (bind(fd, reinterpret_cast<const sockaddr*>(&src), sizeof src) != 0) {
            close(fd); ++ws.failed_connect; return false;
        }
        const sockaddr_in& dst = dsts[size_t(idx) % dsts.size()];
        int r = connect(fd, reinterpret_cast<const sockaddr*>(&dst), sizeof dst);
        if (r != 0 && errno != EINPROGRESS) { close(fd); ++ws.failed_connect; return false; }
        c.fd = fd;
        c.st = cstate::connecting;
        ++in_handshake;
        epoll_event ev{};
        ev.events = EPOLLOUT;
        ev.data.u64 = uint64_t(&c - conns.data());
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
        ++ws.opened;
        return true;
    }

    void close_conn(conn& c, bool abort) {
        if (c.fd < 0) return;
        if (c.st == cstate::connecting || c.st == cstate::head) --in_handshake;
        if (abort) {
            linger l{1, 0};
            setsockopt(c.fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
        }
        close(c.fd);
        c.fd = -1;
        c.st = cstate::closed;
        c.carry.clear();
        c.carry.shrink_to_fit();
    }

    void on_line(conn& c, const char* p, size_t n) {
        if (n && p[n - 1] == '\r') --n;
        if (n == 0) {
            if (c.has_data && !c.is_position) { ++c.events; ++ws.events; }
            c.has_data = c.is_position = false;
            return;
        }
        constexpr std::string_view position_line = "event: ssegw-position";
        if (std::string_view(p, n) == position_line) {
            c.is_position = true;
            return;
        }
        if (n >= 5 && memcmp(p, "data:", 5) == 0 && !c.is_position) {
            c.has_data = true;
            ++ws.data_lines;
            std::string_view v(p, n);
            size_t t = v.find("t=");
            if (t != std::string_view::npos) {
                int64_t ts = 0;
                for (size_t k = t + 2; k < n && p[k] >= '0' && p[k] <= '9'; ++k) ts = ts * 10 + (p[k] - '0');
                if (ts > 0) {
                    ws.lat.record(now_rt - ts);
                    if (o.plan()) record_broadcast(v, now_rt - ts);
                }
            }
        }
    }

    // "data: b=<k> t=...": broadcast k of the plan.
    void record_broadcast(std::string_view line, int64_t latency) {
        size_t b = line.find("b=");
        if (b == std::string_view::npos || b > 6) return;
        size_t k = 0;
        for (size_t i = b + 2; i < line.size() && line[i] >= '0' && line[i] <= '9'; ++i) k = k * 10 + size_t(line[i] - '0');
        if (k >= size_t(o.broadcasts)) return;
        if (ws.per_broadcast.size() <= k) ws.per_broadcast.resize(k + 1);
        if (!ws.per_broadcast[k]) ws.per_broadcast[k] = std::make_unique<bench::histogram>();
        ws.per_broadcast[k]->record(latency);
    }

    // plan: what connection idx was owed (every broadcast, plus one event if its user is one of
    // u0..u(unicasts-1)), compared with what it got.
    std::string verify_line() const {
        long ok = 0, short_streams = 0, over_streams = 0, missing = 0, extra = 0;
        for (const conn& c : conns) {
            long user = o.users > 0 ? c.index % o.users : c.index;
            long owed = o.broadcasts + (user < o.unicasts ? 1 : 0);
            long got = long(c.events);
            if (got == owed) ++ok;
            else if (got < owed) { ++short_streams; missing += owed - got; }
            else { ++over_streams; extra += got - owed; }
        }
        return "VERIFY " + std::to_string(ok) + " " + std::to_string(short_streams) + " " +
               std::to_string(over_streams) + " " + std::to_string(missing) + " " + std::to_string(extra) + "\n";
    }

    void feed_sse(conn& c, const char* p, size_t n) {
        while (n) {
            const char* nl = static_cast<const char*>(memchr(p, '\n', n));
            if (!nl) { c.carry.append(p, n); return; }
            size_t len = size_t(nl - p);
            if (!c.carry.empty()) {
                c.carry.append(p, len);
                on_line(c, c.carry.data(), c.carry.size());
                c.carry.clear();
            } else {
                on_line(c, p, len);
            }
            p = nl + 1;
            n -= len + 1;
        }
    }

    void feed_body(conn& c, const char* p, size_t n) {
        if (!c.chunked) { feed_sse(c, p, n); return; }
        while (n) {
            switch (c.ch) {
            case chst::size: {
                char ch = *p++; --n;
                if (ch >= '0' && ch <= '9') c.ch_rem = c.ch_rem * 16 + uint64_t(ch - '0');
                else if (ch >= 'a' && ch <= 'f') c.ch_rem = c.ch_rem * 16 + uint64_t(ch - 'a' + 10);
                else if (ch >= 'A' && ch <= 'F') c.ch_rem = c.ch_rem * 16 + uint64_t(ch - 'A' + 10);
                else if (ch == ';') c.ch = chst::ext;
                else if (ch == '\n') c.ch = c.ch_rem ? chst::data : chst::done;
                break;
            }
            case chst::ext: {
                char ch = *p++; --n;
                if (ch == '\n') c.ch = c.ch_rem ? chst::data : chst::done;
                break;
            }
            case chst::data: {
                size_t take = size_t(std::min<uint64_t>(c.ch_rem, n));
                feed_sse(c, p, take);
                p += take; n -= take; c.ch_rem -= take;
                if (!c.ch_rem) c.ch = chst::data_end;
                break;
            }
            case chst::data_end: {
                char ch = *p++; --n;
                if (ch == '\n') { c.ch = chst::size; c.ch_rem = 0; }
                break;
            }
            case chst::done: return;
            }
        }
    }

    // Returns false when the connection must be closed.
    bool on_head(conn& c, size_t head_end) {
        std::string_view h(c.carry.data(), head_end);
        int status = 0;
        if (h.size() > 12 && h.substr(0, 5) == "HTTP/") status = atoi(std::string(h.substr(9, 3)).c_str());
        if (status != 200) { ++ws.bad_status; return false; }
        std::string lower(h);
        for (auto& ch : lower) ch = char(tolower(ch));
        c.chunked = lower.find("transfer-encoding: chunked") != std::string::npos ||
                    lower.find("transfer-encoding:chunked") != std::string::npos;
        ++ws.established;
        c.st = cstate::body;
        --in_handshake;
        return true;
    }

    void on_readable(conn& c, char* buf, size_t cap) {
        for (int rounds = 0; rounds < 4; ++rounds) {
            ssize_t n = read(c.fd, buf, cap);
            if (n < 0 && errno == EAGAIN) return;
            if (n <= 0) {
                if (c.st == cstate::body || c.st == cstate::head) ++ws.closed_by_server;
                finish(c);
                return;
            }
            now_rt = mono_ns();
            ws.bytes += n;
            if (c.st == cstate::head) {
                c.carry.append(buf, size_t(n));
                size_t e = c.carry.find("\r\n\r\n");
                if (e == std::string::npos) {
                    if (c.carry.size() > 16384) { ++ws.bad_status; finish(c); return; }
                    continue;
                }
                if (!on_head(c, e)) { finish(c); return; }
                if (churn_slots) { ++ws.churn_ok; finish(c, true); return; }
                std::string rest = c.carry.substr(e + 4);
                c.carry.clear();
                c.carry.shrink_to_fit();
                feed_body(c, rest.data(), rest.size());
                report_ready_if_done();
            } else {
                feed_body(c, buf, size_t(n));
            }
            if (size_t(n) < cap) return;
        }
    }

    void finish(conn& c, bool abort = false) {
        if (!churn_slots) {
            if (c.st == cstate::connecting || c.st == cstate::head) ++pending_done_failed;
            close_conn(c, abort);
            report_ready_if_done();
            return;
        }
        close_conn(c, abort);
        if (measuring && running) {
            long idx = next_index++;
            if (next_index >= hi) next_index = lo;
            open_conn(c, int(idx));
        }
    }

    long pending_done_failed = 0;
    bool ready_sent = false;
    void report_ready_if_done() {
        if (ready_sent || churn_slots) return;
        long done = ws.established + ws.failed_connect + pending_done_failed;
        if (next_index >= hi && done >= (hi - lo)) {
            ready_sent = true;
            write_all(res_out, "READY " + std::to_string(ws.established) + " " +
                                   std::to_string(ws.failed_connect + ws.bad_status) + "\n");
        }
    }

    void send_result() {
        long mn = -1, mx = 0;
        for (auto& c : conns) {
            if (c.fd < 0 && c.events == 0 && churn_slots) continue;
            if (mn < 0 || c.events < mn) mn = c.events;
            if (c.events > mx) mx = c.events;
        }
        std::string r = "RESULT " + std::to_string(ws.opened) + " " + std::to_string(ws.established) + " " +
                        std::to_string(ws.failed_connect) + " " + std::to_string(ws.bad_status) + " " +
                        std::to_string(ws.closed_by_server) + " " + std::to_string(ws.events) + " " +
                        std::to_string(ws.data_lines) + " " + std::to_string(ws.bytes) + " " +
                        std::to_string(ws.churn_ok) + " " + std::to_string(mn) + " " + std::to_string(mx) +
                        " " + std::to_string(ws.lat.negative()) + "\n";
        if (o.plan()) {
            r += verify_line();
            for (size_t k = 0; k < ws.per_broadcast.size(); ++k)
                if (ws.per_broadcast[k]) r += "BHIST " + std::to_string(k) + " " + ws.per_broadcast[k]->serialize() + "\n";
        }
        r += "HIST " + ws.lat.serialize() + "\n";  // last: the parent takes it as the end
        write_all(res_out, r);
    }

    int run() {
        signal(SIGPIPE, SIG_IGN);
        std::vector<int> ports = o.ports.empty() ? std::vector<int>{o.port} : o.ports;
        for (int port : ports) {
            sockaddr_in dst{};
            dst.sin_family = AF_INET;
            dst.sin_port = htons(uint16_t(port));
            inet_pton(AF_INET, o.host.c_str(), &dst.sin_addr);
            dsts.push_back(dst);
        }
        for (int s = 0; s < o.sources; ++s) {
            sockaddr_in a{};
            a.sin_family = AF_INET;
            a.sin_addr.s_addr = htonl(0x7f000002u + uint32_t(s));
            srcs.push_back(a);
        }
        ep = epoll_create1(EPOLL_CLOEXEC);
        size_t nslots = churn_slots ? size_t(churn_slots) : size_t(hi - lo);
        conns.resize(nslots);
        int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
        itimerspec its{{0, 1000000}, {0, 1000000}};
        timerfd_settime(tfd, 0, &its, nullptr);
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u64 = ~0ULL;
        epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &ev);
        ev.data.u64 = ~1ULL;
        set_nonblock(ctl_in);
        epoll_ctl(ep, EPOLL_CTL_ADD, ctl_in, &ev);

        int64_t t0 = mono_ns(), last_prog = t0;
        long opened_slots = 0;
        if (churn_slots) write_all(res_out, "READY 0 0\n");
        else if (hi == lo) report_ready_if_done();
        std::vector<char> buf(1 << 16);
        std::vector<epoll_event> evs(1024);
        while (running) {
            int n = epoll_wait(ep, evs.data(), int(evs.size()), 100);
            for (int i = 0; i < n; ++i) {
                uint64_t k = evs[i].data.u64;
                if (k == ~0ULL) {
                    uint64_t x;
                    (void)!read(tfd, &x, sizeof x);
                    int64_t t = mono_ns();
                    if (!churn_slots && next_index < hi) {
                        long due = long(double(t - t0) * 1e-9 * rate) + 1;
                        while (next_index < hi && (next_index - lo) < due &&
                               (o.max_pending <= 0 || in_handshake < o.max_pending)) {
                            conn& c = conns[size_t(next_index - lo)];
                            open_conn(c, int(next_index));
                            ++next_index;
                        }
                        report_ready_if_done();
                    }
                    if (churn_slots && measuring && opened_slots < churn_slots) {
                        // ramp the churn slots at the connect rate as well
                        long due = std::min<long>(churn_slots, long(double(t - churn_t0) * 1e-9 * rate) + 1);
                        for (; opened_slots < due; ++opened_slots) {
                            long idx = next_index++;
                            if (next_index >= hi) next_index = lo;
                            open_conn(conns[size_t(opened_slots)], int(idx));
                        }
                    }
                    if (t - last_prog > 200000000) {
                        last_prog = t;
                        write_all(res_out, "PROG " + std::to_string(ws.events) + " " +
                                               std::to_string(ws.churn_ok) + "\n");
                    }
                    continue;
                }
                if (k == ~1ULL) {
                    char cmd[64];
                    ssize_t r = read(ctl_in, cmd, sizeof cmd);
                    if (r == 0) { running = false; break; }
                    for (ssize_t j = 0; j < r; ++j) {
                        if (cmd[j] == 'G') { measuring = true; churn_t0 = mono_ns(); }
                        if (cmd[j] == 'S') { measuring = false; running = false; }
                    }
                    continue;
                }
                conn& c = conns[size_t(k)];
                if (c.fd < 0) continue;
                if (c.st == cstate::connecting) {
                    int err = 0;
                    socklen_t l = sizeof err;
                    getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &l);
                    if (err || (evs[i].events & (EPOLLERR | EPOLLHUP))) {
                        ++ws.failed_connect;
                        close_conn(c, false);
                        if (churn_slots) finish(c);
                        else report_ready_if_done();
                        continue;
                    }
                    std::string req = request_for(c.index);
                    ssize_t w = write(c.fd, req.data(), req.size());
                    if (w != ssize_t(req.size())) { ++ws.failed_connect; close_conn(c, false); if (churn_slots) finish(c); else report_ready_if_done(); continue; }
                    c.st = cstate::head;
                    epoll_event e2{};
                    e2.events = EPOLLIN | EPOLLRDHUP;
                    e2.data.u64 = k;
                    epoll_ctl(ep, EPOLL_CTL_MOD, c.fd, &e2);
                    continue;
                }
                on_readable(c, buf.data(), buf.size());
            }
        }
        send_result();
        for (auto& c : conns) if (c.fd >= 0) close(c.fd);
        return 0;
    }
    int64_t churn_t0 = 0;
};

// ---------- publisher ----------
// Redis Cluster's key hash slot: CRC16/XMODEM of the key's {hash tag} (or the whole key) mod 16384.
unsigned key_slot(std::string_view key) {
    if (auto open = key.find('{'); open != std::string_view::npos)
        if (auto close = key.find('}', open + 1); close != std::string_view::npos && close > open + 1)
            key = key.substr(open + 1, close - open - 1);
    unsigned crc = 0;
    for (unsigned char c : key) {
        crc ^= unsigned(c) << 8;
        for (int b = 0; b < 8; ++b) crc = (crc & 0x8000) ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    }
    return crc % 16384;
}

struct publisher {
    // One connection per Redis node (one unless --pub-cluster names several).
    struct link {
        explicit link(int p) : port(p) {}
        int port;
        int fd = -1;
        std::string out, in;
        long sent = 0;  // commands routed here
    };
    const options& o;
    std::vector<link> links;
    std::vector<unsigned char> slot_link;  // hash slot -> index into links (--pub-cluster)
    long sent = 0, replies = 0, errors = 0, receivers = 0;
    long limit = LONG_MAX;  // rate-driven publishing stops at this many sent
    std::mt19937_64 rng{12345};
    std::vector<std::string> argv_tmpl;
    std::string tag;  // payload prefix ("b=<k> " for the plan's broadcast k)
    int64_t last_stamp = 0;  // the t= of the last payload built: where its latency starts
    long seq = 0;     // {s}: events sent since use()

    explicit publisher(const options& opt) : o(opt) {
        use(o.pub_cmd);
        if (o.pub_slot_ranges.empty()) {
            links.emplace_back(o.pub_port);
            return;
        }
        slot_link.assign(16384, 0);
        for (size_t r = 0; r < o.pub_slot_ranges.size(); ++r) {
            int port = o.pub_slot_ranges[r].second;
            auto it = std::find_if(links.begin(), links.end(), [&](auto& l) { return l.port == port; });
            if (it == links.end()) it = links.insert(links.end(), link(port));
            int end = r + 1 < o.pub_slot_ranges.size() ? o.pub_slot_ranges[r + 1].first : 16384;
            for (int slot = o.pub_slot_ranges[r].first; slot < end; ++slot)
                slot_link[size_t(slot)] = static_cast<unsigned char>(it - links.begin());
        }
    }

    // The Redis command to publish with from now on; {s} counts from 0 again.
    void use(const std::string& c) {
        argv_tmpl.clear();
        seq = 0;
        size_t i = 0;
        while (i < c.size()) {
            while (i < c.size() && c[i] == ' ') ++i;
            size_t j = i;
            while (j < c.size() && c[j] != ' ') ++j;
            if (j > i) argv_tmpl.push_back(c.substr(i, j - i));
            i = j;
        }
    }

    void connect_() {
        for (auto& l : links) {
            l.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
            sockaddr_in a{};
            a.sin_family = AF_INET;
            a.sin_port = htons(uint16_t(l.port));
            inet_pton(AF_INET, o.pub_host.c_str(), &a.sin_addr);
            if (connect(l.fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) die("publisher connect: "s + strerror(errno));
            int one = 1;
            setsockopt(l.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            set_nonblock(l.fd);
        }
    }

    std::string payload() {
        // CLOCK_MONOTONIC: publisher and receivers share this machine's clock, and a wall-clock
        // step (NTP, a busy VM's clock sync) cannot show up as latency.
        last_stamp = mono_ns();
        std::string p = tag + "t=" + std::to_string(last_stamp) + " ";
        if (int(p.size()) < o.payload) p.append(size_t(o.payload) - p.size(), 'x');
        return p;
    }

    void enqueue_one() {
        long r = o.pub_users > 0 ? long(rng() % uint64_t(o.pub_users)) : 0;
        long s = seq++;
        std::string pl = payload();
        if (o.pub == "redis") {
            // Routed by the first argument with a {hash tag} (the key of FCALL ... 1 <key>, the
            // channel of SPUBLISH), else by the second word.
            std::string cmd = "*" + std::to_string(argv_tmpl.size() + 1) + "\r\n";
            std::string routing_key, second;
            for (size_t k = 0; k < argv_tmpl.size(); ++k) {
                std::string w = subst(subst(argv_tmpl[k], "{r}", r), "{s}", s);
                if (k == 1) second = w;
                if (k > 0 && routing_key.empty() && w.find('{') != std::string::npos) routing_key = w;
                cmd += "$" + std::to_string(w.size()) + "\r\n" + w + "\r\n";
            }
            if (routing_key.empty()) routing_key = second;
            cmd += "$" + std::to_string(pl.size()) + "\r\n" + pl + "\r\n";
            auto& to = slot_link.empty() ? links[0] : links[slot_link[key_slot(routing_key)]];
            to.out += cmd;
            ++to.sent;
        } else {
            std::string& out = links[0].out;
            std::string p = subst(o.pub_path, "{r}", r);
            if (!o.pub_json_channel.empty())
                pl = "{\"channel\":\"" + subst(o.pub_json_channel, "{r}", r) + "\",\"data\":\"" + pl + "\"}";
            out += "POST " + p + " HTTP/1.1\r\nHost: " + o.pub_host + "\r\nContent-Type: " + std::string(o.pub_json_channel.empty() ? "text/plain" : "application/json") + "\r\nContent-Length: " +
                   std::to_string(pl.size()) + "\r\n\r\n" + pl;
        }
        ++sent;
    }

    void flush() {
        for (auto& l : links)
            while (!l.out.empty()) {
                ssize_t n = write(l.fd, l.out.data(), l.out.size());
                if (n > 0) l.out.erase(0, size_t(n));
                else break;
            }
    }

    // Parses as many complete replies as are buffered on one link.
    void parse(std::string& in) {
        size_t p = 0;
        for (;;) {
            if (o.pub == "redis") {
                size_t e = in.find("\r\n", p);
                if (e == std::string::npos) break;
                char t = in[p];
                if (t == '$') {
                    long len = atol(in.c_str() + p + 1);
                    size_t need = e + 2 + (len >= 0 ? size_t(len) + 2 : 0);
                    if (in.size() < need) break;
                    ++replies;
                    p = need;
                } else {
                    if (t == ':') receivers += atol(in.c_str() + p + 1);
                    if (t == '-') {
                        ++errors;
                        if (errors <= 3) fprintf(stderr, "loadgen: publish error: %.*s\n", int(e - p), in.c_str() + p);
                    }
                    ++replies;
                    p = e + 2;
                }
            } else {
                size_t e = in.find("\r\n\r\n", p);
                if (e == std::string::npos) break;
                std::string head = in.substr(p, e - p);
                for (auto& ch : head) ch = char(tolower(ch));
                size_t cl = head.find("content-length:");
                long len = cl == std::string::npos ? 0 : atol(head.c_str() + cl + 15);
                if (in.size() < e + 4 + size_t(len)) break;
                int status = head.size() > 12 ? atoi(head.c_str() + 9) : 0;
                if (status < 200 || status >= 300) ++errors;
                ++replies;
                p = e + 4 + size_t(len);
            }
        }
        in.erase(0, p);
    }

    void on_readable(size_t which) {
        auto& l = links[which];
        char buf[65536];
        for (;;) {
            ssize_t n = read(l.fd, buf, sizeof buf);
            if (n > 0) { l.in.append(buf, size_t(n)); continue; }
            break;
        }
        parse(l.in);
    }
};

struct child { pid_t pid; int ctl; int res; line_reader lr; bool ready = false; long established = 0, failed = 0;
               long prog = 0, prog_churn = 0; bool done = false; std::vector<long> result; bench::histogram hist;
               std::vector<long> verify; std::map<int, bench::histogram> per_broadcast; };

// "idx:count idx:count ..." (histogram::serialize) added into h.
void parse_hist(const char* s, bench::histogram& h) {
    int idx; unsigned long long cnt; int used;
    while (sscanf(s, "%d:%llu %n", &idx, &cnt, &used) == 2) { h.add(idx, cnt); s += used; }
}

std::vector<long> parse_longs(const char* s) {
    std::vector<long> v;
    char* e;
    for (;;) { long x = strtol(s, &e, 10); if (e == s) break; v.push_back(x); s = e; }
    return v;
}

void send_ctl(std::vector<child>& ch, char c) { for (auto& x : ch) (void)!write(x.ctl, &c, 1); }

// Drives the children's pipes (and optionally the publisher) for up to `dur` seconds, or until
// `until` returns true.
template <class Until>
void pump(std::vector<child>& kids, publisher* pub, double rate, double dur, Until until) {
    int ep = epoll_create1(EPOLL_CLOEXEC);
    for (size_t i = 0; i < kids.size(); ++i) {
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u64 = i;
        epoll_ctl(ep, EPOLL_CTL_ADD, kids[i].res, &ev);
    }
    int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    long tick_ns = 1000000;
    if (rate > 0) tick_ns = std::clamp<long>(long(1e9 / rate), 50000, 1000000);
    itimerspec its{{0, tick_ns}, {0, tick_ns}};
    timerfd_settime(tfd, 0, &its, nullptr);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = 1000000;
    epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &ev);
    if (pub)
        for (size_t l = 0; l < pub->links.size(); ++l) {
            ev.events = EPOLLIN;
            ev.data.u64 = 1000001 + l;
            epoll_ctl(ep, EPOLL_CTL_ADD, pub->links[l].fd, &ev);
        }
    int64_t t0 = mono_ns();
    long base_sent = pub ? pub->sent : 0;
    epoll_event evs[64];
    for (;;) {
        int64_t t = mono_ns();
        if (double(t - t0) * 1e-9 >= dur || until()) break;
        int n = epoll_wait(ep, evs, 64, 50);
        for (int i = 0; i < n; ++i) {
            uint64_t k = evs[i].data.u64;
            if (k == 1000000) {
                uint64_t x;
                (void)!read(tfd, &x, sizeof x);
                if (pub && rate > 0) {
                    long due = long(double(mono_ns() - t0) * 1e-9 * rate);
                    while (pub->sent - base_sent < due && pub->sent < pub->limit) pub->enqueue_one();
                    pub->flush();
                }
            } else if (pub && k >= 1000001 && k < 1000001 + pub->links.size()) {
                pub->on_readable(size_t(k - 1000001));
            } else {
                child& c = kids[k];
                bool open = c.lr.fill(c.res);
                std::string line;
                while (c.lr.next(line)) {
                    if (line.rfind("READY ", 0) == 0) {
                        c.ready = true;
                        sscanf(line.c_str() + 6, "%ld %ld", &c.established, &c.failed);
                    } else if (line.rfind("PROG ", 0) == 0) {
                        sscanf(line.c_str() + 5, "%ld %ld", &c.prog, &c.prog_churn);
                    } else if (line.rfind("RESULT ", 0) == 0) {
                        c.result = parse_longs(line.c_str() + 7);
                    } else if (line.rfind("VERIFY ", 0) == 0) {
                        c.verify = parse_longs(line.c_str() + 7);
                    } else if (line.rfind("BHIST ", 0) == 0) {
                        char* e;
                        long k = strtol(line.c_str() + 6, &e, 10);
                        parse_hist(e, c.per_broadcast[int(k)]);
                    } else if (line.rfind("HIST ", 0) == 0) {
                        parse_hist(line.c_str() + 5, c.hist);
                        c.done = true;
                    }
                }
                if (!open) { c.done = true; epoll_ctl(ep, EPOLL_CTL_DEL, c.res, nullptr); }
            }
        }
    }
    if (pub) pub->flush();
    close(tfd);
    close(ep);
}

// The plan (bench/million): broadcasts one after the other, each given until every stream has it
// (or --broadcast-timeout), then --unicasts events to users u0.. at --unicast-rate, then a settle.
// Returns ,"plan":{...} for the output: CPU per delivery of each phase, each broadcast's latency
// over every stream, and the per-stream check (streams that got fewer or more events than owed).
std::string run_plan(const options& o, std::vector<child>& kids, publisher& pub, long streams,
                     const std::vector<int>& own_pids) {
    auto delivered = [&] { long t = 0; for (auto& k : kids) t += k.prog; return t; };
    auto cpu_of = [](const proc_sample& a, const proc_sample& b) {
        return (a.sched_ok && b.sched_ok) ? b.sched_s - a.sched_s : b.cpu_s - a.cpu_s;
    };
    std::string j = ",\"plan\":{";
    char num[512];
    // broadcasts
    proc_sample s0 = read_procs(o.server_pids), r0 = read_procs(o.redis_pids), l0 = read_procs(own_pids);
    long d0 = delivered(), target = d0;
    int64_t t0 = mono_ns();
    std::vector<double> reach_s;
    pub.use(o.broadcast_cmd);
    for (int k = 0; k < o.broadcasts; ++k) {
        pub.tag = "b=" + std::to_string(k) + " ";
        pub.enqueue_one();
        pub.flush();
        target += streams;
        // From the payload's own stamp, like the streams' latencies: with ~110 busy processes on
        // two cores this process can be preempted for a second between the stamp and a clock read
        // here, which made "reached all" come out below the latency maximum at 1,000,000.
        int64_t tk = pub.last_stamp;
        pump(kids, &pub, 0, o.broadcast_timeout, [&] { return delivered() >= target; });
        reach_s.push_back(double(mono_ns() - tk) * 1e-9);
        pump(kids, &pub, 0, o.broadcast_gap, [] { return false; });
    }
    proc_sample s1 = read_procs(o.server_pids), r1 = read_procs(o.redis_pids), l1 = read_procs(own_pids);
    long d1 = delivered();
    double bwin = double(mono_ns() - t0) * 1e-9;
    // unicasts: users u0..u(U-1), each one event
    pub.tag.clear();
    pub.use(o.unicast_cmd);
    // streams (connection indexes 0..conns-1, user = index % users) whose user is among them
    long total_users = o.users > 0 ? o.users : o.conns;
    long users_hit = std::min<long>(o.unicasts, total_users);
    long owed = long(o.conns) / total_users * users_hit + std::min<long>(o.conns % total_users, users_hit);
    pub.limit = pub.sent + o.unicasts;
    int64_t t1 = mono_ns();
    if (o.unicasts > 0)
        pump(kids, &pub, o.unicast_rate, double(o.unicasts) / o.unicast_rate + 0.5,
             [&] { return pub.sent >= pub.limit; });
    double upub = double(mono_ns() - t1) * 1e-9;
    long utarget = d1 + owed;
    int64_t last_change = mono_ns();
    long last = -1;
    pump(kids, &pub, 0, o.settle_max, [&] {
        long d = delivered() + pub.replies;
        int64_t t = mono_ns();
        if (d != last) { last = d; last_change = t; }
        return (delivered() >= utarget && pub.replies >= pub.sent) || t - last_change > 3000000000LL;
    });
    proc_sample s2 = read_procs(o.server_pids), r2 = read_procs(o.redis_pids), l2 = read_procs(own_pids);
    long d2 = delivered();
    double uwin = double(mono_ns() - t1) * 1e-9;
    double bcpu = cpu_of(s0, s1), ucpu = cpu_of(s1, s2);
    snprintf(num, sizeof num,
             "\"broadcast_window_s\":%.3f,\"broadcast_deliveries_seen\":%ld,\"broadcast_server_cpu_s\":%.3f,"
             "\"broadcast_redis_cpu_s\":%.4f,\"broadcast_loadgen_cpu_s\":%.3f,\"unicast_publish_s\":%.3f,"
             "\"unicast_window_s\":%.3f,\"unicast_streams_owed\":%ld,\"unicast_deliveries_seen\":%ld,"
             "\"unicast_server_cpu_s\":%.3f,\"unicast_redis_cpu_s\":%.4f,\"unicast_loadgen_cpu_s\":%.3f,",
             bwin, d1 - d0, bcpu, cpu_of(r0, r1), cpu_of(l0, l1), upub, uwin, owed, d2 - d1, ucpu,
             cpu_of(r1, r2), cpu_of(l1, l2));
    j += num;
    // the streams' own counts and each broadcast's histogram arrive with the results
    send_ctl(kids, 'S');
    pump(kids, nullptr, 0, 60, [&] { return std::all_of(kids.begin(), kids.end(), [](auto& k) { return k.done; }); });
    long v[5] = {0};
    std::map<int, bench::histogram> per;
    for (auto& k : kids) {
        for (size_t i = 0; i < k.verify.size() && i < 5; ++i) v[i] += k.verify[i];
        for (auto& [b, h] : k.per_broadcast) per[b].merge(h);
    }
    snprintf(num, sizeof num,
             "\"streams_ok\":%ld,\"streams_short\":%ld,\"streams_over\":%ld,\"events_missing\":%ld,"
             "\"events_extra\":%ld,\"broadcasts\":[",
             v[0], v[1], v[2], v[3], v[4]);
    j += num;
    auto ms = [](uint64_t ns) { return double(ns) / 1e6; };
    for (int k = 0; k < o.broadcasts; ++k) {
        const bench::histogram& h = per[k];
        snprintf(num, sizeof num,
                 "%s{\"k\":%d,\"deliveries\":%lu,\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"max_ms\":%.3f,\"reach_s\":%.3f}",
                 k ? "," : "", k, (unsigned long)h.total(), ms(h.percentile(50)), ms(h.percentile(99)), ms(h.max()),
                 size_t(k) < reach_s.size() ? reach_s[size_t(k)] : -1.0);
        j += num;
    }
    return j + "]}";
}

void usage() {
    puts("loadgen [--host H] [--port P[,P2,...]] [--path TEMPLATE] [--conns N] [--users N] [--conn-rate R]\n"
         "        [--procs P] [--sources N] [--idle-settle S] [--max-pending N (per worker)]\n"
         "        [--source-ports BASE (bind source ports BASE.. instead of the kernel's search)]\n"
         "        [--pub none|redis|http] [--pub-host H] [--pub-port P] [--pub-cmd 'PUBLISH sse:user:u{r}']\n"
         "        [--pub-cluster 'first-last:port,...' (Redis Cluster: each command to its key's slot owner)]\n"
         "        [--pub-path '/pub?ch=u{r}'] [--pub-json-channel 'user:u{r}'] [--pub-users N] [--pub-rate R] [--duration S] [--payload B]\n"
         "        [--settle-max S] [--churn C] [--server-pid PID]... [--redis-pid PID]...\n"
         "        [--broadcasts B] [--broadcast-cmd 'PUBLISH sse:broadcast'] [--broadcast-timeout S] [--broadcast-gap S]\n"
         "        [--unicasts U] [--unicast-cmd 'PUBLISH sse:user:u{s}'] [--unicast-rate R]   (the plan: bench/million)\n"
         "templates: {i} connection index, {u} = i % users, {r} random in [0, pub-users), {s} sequence from 0\n"
         "prints one JSON object on stdout");
}

}  // namespace

int main(int argc, char** argv) {
    options o;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto val = [&]() -> std::string { if (i + 1 >= argc) die("missing value for " + a); return argv[++i]; };
        if (a == "--host") o.host = val();
        else if (a == "--port") {
            std::string v = val();
            o.ports.clear();
            for (size_t b = 0; b <= v.size();) {
                size_t e = v.find(',', b);
                if (e == std::string::npos) e = v.size();
                if (e > b) o.ports.push_back(std::stoi(v.substr(b, e - b)));
                b = e + 1;
            }
            if (o.ports.empty()) die("--port needs a number");
            o.port = o.ports[0];
        }
        else if (a == "--path") o.path = val();
        else if (a == "--conns") o.conns = std::stoi(val());
        else if (a == "--users") o.users = std::stoi(val());
        else if (a == "--conn-rate") o.conn_rate = std::stod(val());
        else if (a == "--max-pending") o.max_pending = std::stoi(val());
        else if (a == "--procs") o.procs = std::stoi(val());
        else if (a == "--sources") o.sources = std::stoi(val());
        else if (a == "--source-ports") o.source_ports = std::stoi(val());
        else if (a == "--idle-settle") o.idle_settle = std::stod(val());
        else if (a == "--pub") o.pub = val();
        else if (a == "--pub-host") o.pub_host = val();
        else if (a == "--pub-port") o.pub_port = std::stoi(val());
        else if (a == "--pub-cmd") o.pub_cmd = val();
        else if (a == "--pub-cluster") {
            std::string v = val();
            for (size_t i0 = 0; i0 < v.size();) {
                size_t e = v.find(',', i0);
                if (e == std::string::npos) e = v.size();
                int lo = 0, hi = 0, port = 0;
                if (sscanf(v.substr(i0, e - i0).c_str(), "%d-%d:%d", &lo, &hi, &port) != 3 || lo < 0 || hi < lo ||
                    hi > 16383 || port <= 0)
                    die("--pub-cluster wants first-last:port,...");
                o.pub_slot_ranges.push_back({lo, port});
                i0 = e + 1;
            }
            std::sort(o.pub_slot_ranges.begin(), o.pub_slot_ranges.end());
        }
        else if (a == "--pub-path") o.pub_path = val();
        else if (a == "--pub-json-channel") o.pub_json_channel = val();
        else if (a == "--pub-users") o.pub_users = std::stoi(val());
        else if (a == "--pub-rate") o.pub_rate = std::stod(val());
        else if (a == "--duration") o.duration = std::stod(val());
        else if (a == "--payload") o.payload = std::stoi(val());
        else if (a == "--settle-max") o.settle_max = std::stod(val());
        else if (a == "--churn") o.churn = std::stoi(val());
        else if (a == "--server-pid") o.server_pids.push_back(std::stoi(val()));
        else if (a == "--redis-pid") o.redis_pids.push_back(std::stoi(val()));
        else if (a == "--ready-timeout") o.ready_timeout = std::stod(val());
        else if (a == "--broadcasts") o.broadcasts = std::stoi(val());
        else if (a == "--broadcast-cmd") o.broadcast_cmd = val();
        else if (a == "--broadcast-timeout") o.broadcast_timeout = std::stod(val());
        else if (a == "--broadcast-gap") o.broadcast_gap = std::stod(val());
        else if (a == "--unicasts") o.unicasts = std::stoi(val());
        else if (a == "--unicast-cmd") o.unicast_cmd = val();
        else if (a == "--unicast-rate") o.unicast_rate = std::stod(val());
        else if (a == "-h" || a == "--help") { usage(); return 0; }
        else die("unknown option " + a);
    }
    if (o.pub != "none" && o.pub != "redis" && o.pub != "http") die("--pub must be none, redis or http");
    if (o.plan() && (o.churn || o.pub != "redis")) die("--broadcasts/--unicasts publish with --pub redis, without --churn");
    signal(SIGPIPE, SIG_IGN);
    const int per_proc_max = 18000;
    int slots = o.churn ? o.churn : o.conns;
    int procs = o.procs > 0 ? o.procs : std::max(1, (slots + per_proc_max - 1) / per_proc_max);
    if (o.churn) procs = std::max(procs, 1);
    if (!o.churn && o.conns / procs >= 19000) die("more than 19,000 connections per process: raise --procs");
    rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);

    proc_sample s_base = read_procs(o.server_pids);
    long slab_base = meminfo_kib("Slab");

    std::vector<child> kids(static_cast<size_t>(procs));
    int churn_space = o.conns > 0 ? o.conns : 1000000;  // index space for churn paths
    for (int p = 0; p < procs; ++p) {
        int ctl[2], res[2];
        if (pipe2(ctl, O_CLOEXEC) || pipe2(res, O_CLOEXEC)) die("pipe");
        int lo, hi, cs = 0;
        if (o.churn) {
            lo = int(long(churn_space) * p / procs); hi = int(long(churn_space) * (p + 1) / procs);
            cs = o.churn / procs + (p < o.churn % procs ? 1 : 0);
        } else {
            lo = int(long(o.conns) * p / procs); hi = int(long(o.conns) * (p + 1) / procs);
        }
        pid_t pid = fork();
        if (pid == 0) {
            close(ctl[1]); close(res[0]);
            for (int q = 0; q < p; ++q) { close(kids[size_t(q)].ctl); close(kids[size_t(q)].res); }
            worker w(o, lo, hi, o.conn_rate / procs, cs, ctl[0], res[1]);
            _exit(w.run());
        }
        close(ctl[0]); close(res[1]);
        kids[size_t(p)].pid = pid; kids[size_t(p)].ctl = ctl[1]; kids[size_t(p)].res = res[0];
        set_nonblock(res[0]);
    }

    int64_t t_conn0 = mono_ns();
    pump(kids, nullptr, 0, o.ready_timeout, [&] {
        return std::all_of(kids.begin(), kids.end(), [](auto& k) { return k.ready || k.done; });
    });
    double connect_s = double(mono_ns() - t_conn0) * 1e-9;
    long established = 0, failed = 0;
    for (auto& k : kids) { established += k.established; failed += k.failed; }
    bool all_ready = std::all_of(kids.begin(), kids.end(), [](auto& k) { return k.ready; });

    // idle measurement
    pump(kids, nullptr, 0, o.idle_settle, [] { return false; });
    proc_sample s_idle = read_procs(o.server_pids);
    long slab_idle = meminfo_kib("Slab");

    publisher pub(o);
    std::vector<int> own_pids{int(getpid())};
    for (auto& k : kids) own_pids.push_back(int(k.pid));
    proc_sample s0 = read_procs(o.server_pids), r0 = read_procs(o.redis_pids), l0 = read_procs(own_pids);
    std::vector<double> r0_each = read_cpu_each(o.redis_pids);
    int64_t m0 = mono_ns();
    double window = 0, settle = 0;
    long churn_done = 0;
    std::string plan_json;  // the plan's own figures, appended to the output object
    if (o.plan()) {
        pub.connect_();
        plan_json = run_plan(o, kids, pub, established, own_pids);
        window = double(mono_ns() - m0) * 1e-9;
    } else if (o.churn) {
        send_ctl(kids, 'G');
        pump(kids, nullptr, 0, o.duration, [] { return false; });
        window = double(mono_ns() - m0) * 1e-9;
    } else if (o.pub != "none" && o.pub_rate > 0) {
        pub.connect_();
        pump(kids, &pub, o.pub_rate, o.duration, [] { return false; });
        window = double(mono_ns() - m0) * 1e-9;
        // settle: until deliveries and publish replies stop growing
        int64_t ts = mono_ns();
        long last = -1;
        int64_t last_change = ts;
        pump(kids, &pub, 0, o.settle_max, [&] {
            long tot = pub.replies;
            for (auto& k : kids) tot += k.prog;
            int64_t t = mono_ns();
            if (tot != last) { last = tot; last_change = t; return false; }
            return t - last_change > 600000000;
        });
        settle = double(mono_ns() - ts) * 1e-9;
    } else {
        pump(kids, nullptr, 0, o.duration, [] { return false; });
        window = double(mono_ns() - m0) * 1e-9;
    }
    proc_sample s1 = read_procs(o.server_pids), r1 = read_procs(o.redis_pids), l1 = read_procs(own_pids);
    std::vector<double> r1_each = read_cpu_each(o.redis_pids);
    std::string redis_each = ",\"redis_cpu_each_s\":[";
    for (size_t i = 0; i < r1_each.size(); ++i) {
        char num[32];
        snprintf(num, sizeof num, "%s%.4f", i ? "," : "", r1_each[i] - r0_each[i]);
        redis_each += num;
    }
    redis_each += "],\"pub_links\":[";
    for (size_t i = 0; i < pub.links.size(); ++i)
        redis_each += (i ? ",{\"port\":" : "{\"port\":") + std::to_string(pub.links[i].port) + ",\"sent\":" +
                      std::to_string(pub.links[i].sent) + "}";
    redis_each += "]";
    send_ctl(kids, 'S');
    pump(kids, nullptr, 0, 30, [&] { return std::all_of(kids.begin(), kids.end(), [](auto& k) { return k.done; }); });
    for (auto& k : kids) { close(k.ctl); int st; waitpid(k.pid, &st, 0); }

    // aggregate: opened established failed_connect bad_status closed_by_server events data_lines bytes churn_ok min max negative
    long agg[12] = {0};
    long mn = -1, mx = 0;
    bench::histogram lat;
    for (auto& k : kids) {
        for (size_t i = 0; i < k.result.size() && i < 12; ++i) {
            if (i == 9) { if (k.result[i] >= 0 && (mn < 0 || k.result[i] < mn)) mn = k.result[i]; }
            else if (i == 10) mx = std::max(mx, k.result[i]);
            else agg[i] += k.result[i];
        }
        lat.merge(k.hist);
    }
    churn_done = agg[8];
    long conns = o.churn ? 0 : established;
    // Scheduler run time (ns resolution) when every process exposes it, else utime+stime (ticks).
    double cpu_stat = s1.cpu_s - s0.cpu_s, rcpu_stat = r1.cpu_s - r0.cpu_s;
    double cpu = (s0.sched_ok && s1.sched_ok) ? s1.sched_s - s0.sched_s : cpu_stat;
    double rcpu = (r0.sched_ok && r1.sched_ok) ? r1.sched_s - r0.sched_s : rcpu_stat;
    long deliveries = agg[5];
    auto ms = [](uint64_t ns) { return double(ns) / 1e6; };
    printf("{\"conns_wanted\":%d,\"established\":%ld,\"connect_failed\":%ld,\"all_ready\":%s,\"connect_s\":%.3f,"
           "\"bad_status\":%ld,\"closed_by_server\":%ld,"
           "\"rss_base_kib\":%ld,\"rss_idle_kib\":%ld,\"rss_end_kib\":%ld,\"idle_kib_per_conn\":%.3f,"
           "\"published\":%ld,\"pub_replies\":%ld,\"pub_errors\":%ld,\"pub_receivers\":%ld,"
           "\"window_s\":%.3f,\"settle_s\":%.3f,\"deliveries\":%ld,\"data_lines\":%ld,\"bytes\":%ld,"
           "\"min_events_per_conn\":%ld,\"max_events_per_conn\":%ld,"
           "\"server_cpu_s\":%.4f,\"redis_cpu_s\":%.4f,\"cpu_us_per_delivery\":%.4f,\"redis_cpu_us_per_delivery\":%.4f,"
           "\"churn_conns\":%ld,\"churn_per_s\":%.1f,\"cpu_us_per_churn_conn\":%.3f,"
           "\"lat_count\":%lu,\"lat_negative\":%ld,\"lat_p50_ms\":%.4f,\"lat_p90_ms\":%.4f,\"lat_p99_ms\":%.4f,"
           "\"lat_p999_ms\":%.4f,\"lat_max_ms\":%.4f,\"lat_mean_ms\":%.4f,\"procs\":%d,"
           "\"server_cpu_stat_s\":%.3f,\"redis_cpu_stat_s\":%.3f,\"cpu_source\":\"%s\",\"loadgen_cpu_s\":%.4f,"
           "\"server_switches\":%ld,\"server_switches_per_delivery\":%.3f,"
           "\"slab_base_kib\":%ld,\"slab_idle_kib\":%ld,\"loadgen_rss_idle_kib\":%ld%s%s}\n",
           o.churn ? o.churn : o.conns, established, failed, all_ready ? "true" : "false", connect_s, agg[3], agg[4],
           s_base.rss_kib, s_idle.rss_kib, s1.rss_kib,
           conns > 0 ? double(s_idle.rss_kib - s_base.rss_kib) / double(conns) : 0.0, pub.sent, pub.replies,
           pub.errors, pub.receivers, window, settle, deliveries, agg[6], agg[7], mn, mx, cpu, rcpu,
           deliveries ? cpu * 1e6 / double(deliveries) : 0.0, deliveries ? rcpu * 1e6 / double(deliveries) : 0.0,
           churn_done, window > 0 ? double(churn_done) / window : 0.0,
           churn_done ? cpu * 1e6 / double(churn_done) : 0.0, (unsigned long)lat.total(), agg[11],
           ms(lat.percentile(50)), ms(lat.percentile(90)), ms(lat.percentile(99)), ms(lat.percentile(99.9)),
           ms(lat.max()), lat.mean() / 1e6, procs, cpu_stat, rcpu_stat,
           (s0.sched_ok && s1.sched_ok) ? "schedstat" : "stat", l1.sched_ok && l0.sched_ok ? l1.sched_s - l0.sched_s : l1.cpu_s - l0.cpu_s,
           s1.sched_slices - s0.sched_slices,
           deliveries ? double(s1.sched_slices - s0.sched_slices) / double(deliveries) : 0.0,
           slab_base, slab_idle, l0.rss_kib, redis_each.c_str(), plan_json.c_str());
    return 0;
}
