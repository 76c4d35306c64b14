#include "ssegw/redis/tls_session.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <boost/asio/ip/address.hpp>

#include <stdexcept>

namespace ssegw {

namespace {

// The format Asio's SSL error category used, which logs and tests already know:
// "<reason> (<library>)".
std::string describe(unsigned long e) {
    const char* reason = ERR_reason_error_string(e);
    if (!reason) return "TLS error " + std::to_string(e);
    std::string text(reason);
    if (const char* lib = ERR_lib_error_string(e)) text += std::string(" (") + lib + ")";
    return text;
}

bool is_ip_address(const std::string& name) {
    boost::system::error_code not_an_address;
    boost::asio::ip::make_address(name, not_an_address);
    return !not_an_address;
}

} // namespace

tls_session::tls_session(SSL_CTX* context, const options& opts) {
    ssl_ = SSL_new(context);
    BIO* in = BIO_new(BIO_s_mem());
    BIO* out = BIO_new(BIO_s_mem());
    if (!ssl_ || !in || !out) {
        BIO_free(in);
        BIO_free(out);
        SSL_free(ssl_);
        throw std::runtime_error("TLS: cannot create a session");
    }
    // Empty means "not yet", never end of stream.
    BIO_set_mem_eof_return(in, -1);
    BIO_set_mem_eof_return(out, -1);
    SSL_set_bio(ssl_, in, out); // owned by ssl_ from here
    SSL_set_connect_state(ssl_);
    const std::string& name = opts.server_name;
    const bool ip = is_ip_address(name);
    // No SNI for an IP address, as RFC 6066 says.
    if (!ip && !SSL_set_tlsext_host_name(ssl_, name.c_str())) {
        SSL_free(ssl_);
        throw std::runtime_error("TLS: cannot set the server name \"" + name + "\"");
    }
    // OpenSSL's own name check (rather than a verify callback) reports "hostname mismatch" or
    // "IP address mismatch" as the verification result, which the log line then names.
    const bool name_set =
        ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_), name.c_str()) == 1
           : SSL_set1_host(ssl_, name.c_str()) == 1;
    if (opts.verify && !name_set) {
        SSL_free(ssl_);
        throw std::runtime_error("TLS: cannot check the name \"" + name + "\"");
    }
}

tls_session::~tls_session() { SSL_free(ssl_); }

// The thread's OpenSSL error queue is shared with every other OpenSSL user on the thread (token
// signatures, the other links), so it may hold entries that are not ours. SSL_get_error() reads
// it first, and would take those for this session's failure unless it were emptied before every
// call, which cost each received record a sixth of its decryption (callgrind). The common case,
// "needs more input", is the session's own state instead; on the rare path (a failure, or the
// server's close_notify, which Redis does not send) our entry is the newest one, and the queue
// is emptied afterwards.
tls_session::status tls_session::fail_from(int ret) {
    if (SSL_want_read(ssl_)) return status::want_input;
    const int err = SSL_get_error(ssl_, ret);
    if (err == SSL_ERROR_ZERO_RETURN) {
        ERR_clear_error();
        return status::closed;
    }
    const unsigned long e = ERR_peek_last_error();
    error_ = e != 0 ? describe(e) : "TLS error " + std::to_string(err);
    const long verify = SSL_get_verify_result(ssl_);
    if (verify != X509_V_OK)
        error_ += std::string(" (certificate: ") + X509_verify_cert_error_string(verify) + ")";
    ERR_clear_error();
    return status::failed;
}

tls_session::status tls_session::handshake() {
    const int r = SSL_do_handshake(ssl_);
    return r == 1 ? status::ok : fail_from(r);
}

void tls_session::feed(std::string_view ciphertext) {
    // A memory BIO grows as needed; the connection feeds at most one socket read at a time.
    if (!ciphertext.empty())
        BIO_write(SSL_get_rbio(ssl_), ciphertext.data(), static_cast<int>(ciphertext.size()));
}

tls_session::status tls_session::read(char* out, std::size_t capacity, std::size_t& bytes) {
    const int r = SSL_read(ssl_, out, static_cast<int>(capacity));
    if (r > 0) {
        bytes = static_cast<std::size_t>(r);
        return status::ok;
    }
    return fail_from(r);
}

bool tls_session::buffered() const {
    return SSL_pending(ssl_) > 0 || BIO_ctrl_pending(SSL_get_rbio(ssl_)) > 0;
}

tls_session::status tls_session::write(std::string_view plaintext) {
    if (plaintext.empty()) return status::ok;
    // Into a memory BIO, so a write is whole (no SSL_MODE_ENABLE_PARTIAL_WRITE).
    const int r = SSL_write(ssl_, plaintext.data(), static_cast<int>(plaintext.size()));
    return r > 0 ? status::ok : fail_from(r);
}

bool tls_session::has_output() const { return BIO_ctrl_pending(SSL_get_wbio(ssl_)) > 0; }

void tls_session::take_output(std::string& out) {
    BIO* wbio = SSL_get_wbio(ssl_);
    const std::size_t n = BIO_ctrl_pending(wbio);
    if (n == 0) return;
    const std::size_t at = out.size();
    out.resize(at + n);
    const int got = BIO_read(wbio, out.data() + at, static_cast<int>(n));
    out.resize(at + (got > 0 ? static_cast<std::size_t>(got) : 0));
}

} // namespace ssegw
