// The one translation unit that compiles Asio (with its OpenSSL layer) and Beast (BOOST_*_SEPARATE_COMPILATION is set
// project-wide), so no other file pays for their implementation.
#include <boost/asio/impl/src.hpp>
#include <boost/asio/ssl/impl/src.hpp>
#include <boost/beast/src.hpp>
