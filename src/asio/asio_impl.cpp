// The one translation unit that compiles Asio (with its OpenSSL layer) and Beast (the ssegw_asio library; its
// BOOST_*_SEPARATE_COMPILATION definitions reach every area that links it), so no other file
// pays for their implementation.
#include <boost/asio/impl/src.hpp>
#include <boost/asio/ssl/impl/src.hpp>
#include <boost/beast/src.hpp>
