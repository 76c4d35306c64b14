// tls_session against an in-process OpenSSL server over memory BIOs: the handshake, verification,
// several records per feed, partial records, and a thread error queue polluted by other OpenSSL
// users (the session must not take their entries for its own failure).
#include "ssegw/redis/tls_session.hpp"

#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>
#include <string>

namespace ssegw {
namespace {

struct free_ctx {
    void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};
struct free_ssl {
    void operator()(SSL* s) const { SSL_free(s); }
};
using ctx_ptr = std::unique_ptr<SSL_CTX, free_ctx>;
using ssl_ptr = std::unique_ptr<SSL, free_ssl>;

/// A self-signed P-256 certificate for "localhost", made in memory.
struct identity {
    EVP_PKEY* key = nullptr;
    X509* cert = nullptr;
    identity() {
        key = EVP_EC_gen("P-256");
        cert = X509_new();
        ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
        X509_gmtime_adj(X509_getm_notBefore(cert), -60);
        X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
        X509_set_pubkey(cert, key);
        X509_NAME* name = X509_get_subject_name(cert);
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                   reinterpret_cast<const unsigned char*>("localhost"), -1, -1, 0);
        X509_set_issuer_name(cert, name);
        X509V3_CTX v3;
        X509V3_set_ctx_nodb(&v3);
        X509V3_set_ctx(&v3, cert, cert, nullptr, nullptr, 0);
        X509_EXTENSION* san =
            X509V3_EXT_conf_nid(nullptr, &v3, NID_subject_alt_name, "DNS:localhost");
        X509_add_ext(cert, san, -1);
        X509_EXTENSION_free(san);
        X509_sign(cert, key, EVP_sha256());
    }
    ~identity() {
        X509_free(cert);
        EVP_PKEY_free(key);
    }
};

class TlsSessionTest : public ::testing::Test {
protected:
    identity id;
    ctx_ptr server_ctx{SSL_CTX_new(TLS_server_method())};
    ctx_ptr client_ctx{SSL_CTX_new(TLS_client_method())};
    ssl_ptr server;
    BIO* server_in = nullptr;  // what the client sent
    BIO* server_out = nullptr; // what the server sends

    void SetUp() override {
        ASSERT_EQ(SSL_CTX_use_certificate(server_ctx.get(), id.cert), 1);
        ASSERT_EQ(SSL_CTX_use_PrivateKey(server_ctx.get(), id.key), 1);
        X509_STORE_add_cert(SSL_CTX_get_cert_store(client_ctx.get()), id.cert);
        SSL_CTX_set_verify(client_ctx.get(), SSL_VERIFY_PEER, nullptr);
        server.reset(SSL_new(server_ctx.get()));
        server_in = BIO_new(BIO_s_mem());
        server_out = BIO_new(BIO_s_mem());
        BIO_set_mem_eof_return(server_in, -1);
        BIO_set_mem_eof_return(server_out, -1);
        SSL_set_bio(server.get(), server_in, server_out);
        SSL_set_accept_state(server.get());
    }

    std::string server_output() {
        std::string out(BIO_ctrl_pending(server_out), '\0');
        if (!out.empty()) BIO_read(server_out, out.data(), static_cast<int>(out.size()));
        return out;
    }

    // Runs the handshake both ways until the client is done or fails (bounded).
    tls_session::status handshake(tls_session& client) {
        auto st = tls_session::status::want_input;
        for (int round = 0; round < 10; ++round) {
            st = client.handshake();
            std::string out;
            client.take_output(out);
            BIO_write(server_in, out.data(), static_cast<int>(out.size()));
            if (st != tls_session::status::want_input) break;
            SSL_do_handshake(server.get());
            client.feed(server_output());
        }
        // The server finishes on the client's last flight (and sends its session tickets).
        if (st == tls_session::status::ok) SSL_do_handshake(server.get());
        return st;
    }

    void server_send(const std::string& text) {
        ASSERT_GT(SSL_write(server.get(), text.data(), static_cast<int>(text.size())), 0);
    }
};

TEST_F(TlsSessionTest, HandshakeVerifiesTheServerAndCarriesDataBothWays) {
    tls_session client(client_ctx.get(), {"localhost", true});
    ASSERT_EQ(handshake(client), tls_session::status::ok) << client.error();

    ASSERT_EQ(client.write("*1\r\n$4\r\nPING\r\n"), tls_session::status::ok);
    std::string out;
    client.take_output(out);
    BIO_write(server_in, out.data(), static_cast<int>(out.size()));
    char buf[64];
    const int n = SSL_read(server.get(), buf, sizeof buf);
    ASSERT_GT(n, 0);
    EXPECT_EQ(std::string(buf, static_cast<std::size_t>(n)), "*1\r\n$4\r\nPING\r\n");
}

TEST_F(TlsSessionTest, SeveralRecordsInOneFeedAreReadOnePerCallAndBufferedSaysWhenNoneIsLeft) {
    tls_session client(client_ctx.get(), {"localhost", true});
    ASSERT_EQ(handshake(client), tls_session::status::ok);
    // TLS 1.3 session tickets (non-application records) come first, then three messages.
    server_send("+one\r\n");
    server_send("+two\r\n");
    server_send("+three\r\n");
    client.feed(server_output());
    std::string got;
    char buf[256];
    int reads = 0;
    while (reads < 10) {
        std::size_t n = 0;
        ASSERT_EQ(client.read(buf, sizeof buf, n), tls_session::status::ok);
        ++reads;
        got.append(buf, n);
        if (!client.buffered()) break;
    }
    EXPECT_EQ(got, "+one\r\n+two\r\n+three\r\n");
    EXPECT_EQ(reads, 3);
    EXPECT_FALSE(client.buffered());
}

TEST_F(TlsSessionTest, APartialRecordWaitsForTheRest) {
    tls_session client(client_ctx.get(), {"localhost", true});
    ASSERT_EQ(handshake(client), tls_session::status::ok);
    server_send("+hello\r\n");
    const std::string wire = server_output();
    ASSERT_GT(wire.size(), 10u);
    client.feed(wire.substr(0, wire.size() - 5));
    char buf[64];
    std::size_t n = 0;
    EXPECT_EQ(client.read(buf, sizeof buf, n), tls_session::status::want_input);
    client.feed(wire.substr(wire.size() - 5));
    ASSERT_EQ(client.read(buf, sizeof buf, n), tls_session::status::ok);
    EXPECT_EQ(std::string(buf, n), "+hello\r\n");
}

TEST_F(TlsSessionTest, EntriesOtherOpenSslUsersLeftInTheErrorQueueAreNotTakenForAFailure) {
    tls_session client(client_ctx.get(), {"localhost", true});
    ASSERT_EQ(handshake(client), tls_session::status::ok);
    // Another OpenSSL user on this thread (a failed token signature check, say) left an entry.
    ERR_raise(ERR_LIB_EVP, EVP_R_BAD_DECRYPT);
    char buf[64];
    std::size_t n = 0;
    EXPECT_EQ(client.read(buf, sizeof buf, n), tls_session::status::want_input);
    server_send("+still here\r\n");
    client.feed(server_output());
    ASSERT_EQ(client.read(buf, sizeof buf, n), tls_session::status::ok) << client.error();
    EXPECT_EQ(std::string(buf, n), "+still here\r\n");
    ERR_clear_error();
}

TEST_F(TlsSessionTest, AnUntrustedCertificateFailsTheHandshakeWithTheVerificationResult) {
    ctx_ptr strict{SSL_CTX_new(TLS_client_method())}; // trusts nothing
    SSL_CTX_set_verify(strict.get(), SSL_VERIFY_PEER, nullptr);
    tls_session client(strict.get(), {"localhost", true});
    ASSERT_EQ(handshake(client), tls_session::status::failed);
    EXPECT_NE(client.error().find("certificate verify failed"), std::string::npos)
        << client.error();
    EXPECT_NE(client.error().find("(certificate: self-signed certificate)"), std::string::npos)
        << client.error();
    EXPECT_EQ(ERR_peek_error(), 0u) << "the queue is left empty";
}

TEST_F(TlsSessionTest, AWrongNameFailsTheHandshake) {
    tls_session client(client_ctx.get(), {"other.example", true});
    ASSERT_EQ(handshake(client), tls_session::status::failed);
    EXPECT_NE(client.error().find("hostname mismatch"), std::string::npos) << client.error();
}

TEST_F(TlsSessionTest, TheServersCloseNotifyEndsTheSession) {
    tls_session client(client_ctx.get(), {"localhost", true});
    ASSERT_EQ(handshake(client), tls_session::status::ok);
    SSL_shutdown(server.get());
    client.feed(server_output());
    char buf[64];
    std::size_t n = 0;
    tls_session::status st = tls_session::status::ok;
    for (int i = 0; i < 5 && st == tls_session::status::ok; ++i)
        st = client.read(buf, sizeof buf, n);
    EXPECT_EQ(st, tls_session::status::closed);
}

} // namespace
} // namespace ssegw
