#pragma once
// The TLS client of a rediss:// link, without I/O of its own: the connection reads the socket
// and feeds what arrived, and sends what the session hands back. Asio's ssl::stream did this
// through a BIO pair and its own operation state machine, and tried one SSL_read more per
// received record than there were records (to learn that none was left): per unicast event
// that was a third of what TLS cost the gateway in user-space instructions. Here the caller
// asks `buffered()` instead, which costs no OpenSSL call into the record layer.

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;

namespace ssegw {

class tls_session {
public:
    struct options {
        /// SNI and the name the certificate must carry (host name or IP address).
        std::string server_name;
        bool verify = true;
    };
    enum class status {
        ok,         // done (handshake) or bytes returned (read)
        want_input, // nothing more until more ciphertext is fed
        closed,     // the server ended TLS (close_notify)
        failed,     // see error()
    };

    /// Throws std::runtime_error when the session cannot be set up (out of memory, a name
    /// OpenSSL refuses).
    tls_session(SSL_CTX* context, const options& opts);
    ~tls_session();
    tls_session(const tls_session&) = delete;
    tls_session& operator=(const tls_session&) = delete;

    /// Advances the handshake with what has been fed; ok once it is complete.
    status handshake();
    /// Ciphertext received from the server.
    void feed(std::string_view ciphertext);
    /// Decrypts the next record's application data into `out` (at most `capacity` bytes);
    /// `bytes` is set when the status is ok.
    status read(char* out, std::size_t capacity, std::size_t& bytes);
    /// Whether fed ciphertext or decrypted bytes remain, i.e. whether read() may return more
    /// without another feed(). No record-layer work: a check of two buffers.
    bool buffered() const;
    /// Encrypts application data; the records go to the output (take_output()).
    status write(std::string_view plaintext);
    /// Whether records (handshake, application data, alerts) wait to be sent.
    bool has_output() const;
    /// Appends the records waiting to be sent to `out`.
    void take_output(std::string& out);
    /// Why the last handshake/read/write failed: OpenSSL's reason, with the certificate
    /// verification result when that is what failed.
    const std::string& error() const { return error_; }

private:
    status fail_from(int ret);

    SSL* ssl_ = nullptr;
    std::string error_;
};

} // namespace ssegw
