#pragma once
// Test support: a private redis-server on a free loopback port, and a blocking one-shot client
// for the test side (PUBLISH, PUBSUB NUMSUB, CLIENT KILL ...). Hermetic: nothing depends on a
// Redis already running, and parallel test binaries do not collide.

#include "ssegw/core/redis_url.hpp"
#include "ssegw/redis/resp.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace ssegw::test {

/// A loopback port that was free a moment ago (bind port 0, read it, close).
inline std::uint16_t pick_free_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) throw std::runtime_error("socket() failed");
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    socklen_t len = sizeof addr;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
        ::close(fd);
        throw std::runtime_error("bind/getsockname failed");
    }
    ::close(fd);
    return ntohs(addr.sin_port);
}

/// Connected blocking socket to 127.0.0.1:port with send/receive timeouts, or -1.
inline int connect_loopback(std::uint16_t port, std::chrono::milliseconds timeout) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
    tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

/// Runs one command on a fresh blocking connection; nullopt on any I/O failure or timeout.
inline std::optional<reply>
try_command(std::uint16_t port, const std::vector<std::string>& args,
            std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    int fd = connect_loopback(port, timeout);
    if (fd < 0) return std::nullopt;
    std::vector<std::string_view> views(args.begin(), args.end());
    std::string out = encode_command(views);
    std::size_t sent = 0;
    while (sent < out.size()) {
        ssize_t n = ::send(fd, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
        if (n <= 0) {
            ::close(fd);
            return std::nullopt;
        }
        sent += static_cast<std::size_t>(n);
    }
    resp_reader reader;
    char buf[16384];
    std::optional<reply> result;
    while (!result) {
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) break;
        reader.feed(std::string_view(buf, static_cast<std::size_t>(n)));
        result = reader.next();
    }
    ::close(fd);
    return result;
}

/// Like try_command, but a failure is a test-setup error.
inline reply run_command(std::uint16_t port, const std::vector<std::string>& args) {
    auto r = try_command(port, args);
    if (!r) throw std::runtime_error("redis command failed: " + args.at(0));
    return std::move(*r);
}

/// Subscribers of one channel according to the server (PUBSUB NUMSUB).
inline long long numsub(std::uint16_t port, const std::string& channel) {
    auto r = run_command(port, {"PUBSUB", "NUMSUB", channel});
    if (r.type != reply::kind::array || r.elements.size() != 2)
        throw std::runtime_error("bad NUMSUB reply");
    return r.elements[1].integer;
}

/// A redis-server child process. Killed (SIGKILL) and reaped by stop() and the destructor;
/// start() again reuses the same port.
class redis_server {
public:
    explicit redis_server(std::vector<std::string> extra_args = {}, std::uint16_t port = 0)
        : port_(port != 0 ? port : pick_free_port()), extra_args_(std::move(extra_args)) {
        start();
    }
    ~redis_server() { stop(); }
    redis_server(const redis_server&) = delete;
    redis_server& operator=(const redis_server&) = delete;

    std::uint16_t port() const { return port_; }
    redis_endpoint endpoint() const {
        redis_endpoint ep;
        ep.host = "127.0.0.1";
        ep.port = port_;
        return ep;
    }

    /// Spawns the server and waits (up to 5 s) until it answers.
    void start() {
        if (pid_ > 0) return;
        std::vector<std::string> args{
            "redis-server", "--port", std::to_string(port_), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no",     "--daemonize",         "no",     "--logfile", ""};
        args.insert(args.end(), extra_args_.begin(), extra_args_.end());
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);

        posix_spawn_file_actions_t actions;
        posix_spawn_file_actions_init(&actions);
        posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
        posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
        int rc = posix_spawnp(&pid_, "redis-server", &actions, nullptr, argv.data(), environ);
        posix_spawn_file_actions_destroy(&actions);
        if (rc != 0) {
            pid_ = -1;
            throw std::runtime_error("cannot spawn redis-server: " +
                                     std::string(std::strerror(rc)));
        }
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
        while (std::chrono::steady_clock::now() < deadline) {
            int status = 0;
            if (::waitpid(pid_, &status, WNOHANG) == pid_) {
                pid_ = -1;
                throw std::runtime_error("redis-server exited at start (port " +
                                         std::to_string(port_) + ")");
            }
            // Any reply will do: with --requirepass the answer is a NOAUTH error.
            if (try_command(port_, {"PING"}, std::chrono::milliseconds(200))) return;
            std::this_thread::sleep_for(std::chrono::milliseconds(20)); // polling interval only
        }
        stop();
        throw std::runtime_error("redis-server did not answer within 5 s");
    }

    /// SIGKILL + reap: the harshest way for a link to go away.
    void stop() {
        if (pid_ <= 0) return;
        ::kill(pid_, SIGKILL); // also ends a paused (SIGSTOPped) server, without letting it run
        int status = 0;
        ::waitpid(pid_, &status, 0);
        pid_ = -1;
    }

    /// SIGSTOP: the server keeps its sockets (the kernel still accepts) but answers nothing.
    void pause() {
        if (pid_ > 0) ::kill(pid_, SIGSTOP);
    }
    void resume() {
        if (pid_ > 0) ::kill(pid_, SIGCONT);
    }

private:
    std::uint16_t port_;
    std::vector<std::string> extra_args_;
    pid_t pid_ = -1;
};

} // namespace ssegw::test
