// The one translation unit that compiles Asio and Beast (the ssegw_asio library; its
// BOOST_*_SEPARATE_COMPILATION definitions reach every area that links it), so no other file
// pays for their implementation.
#include <boost/asio/impl/src.hpp>
#include <boost/beast/src.hpp>
