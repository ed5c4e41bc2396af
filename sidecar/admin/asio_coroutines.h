// Include first, before any Boost.Asio header, in a file that uses asio::awaitable.
//
// Boost 1.74 enables its C++20 coroutine support (asio::awaitable, co_spawn,
// use_awaitable) under clang only with libc++'s <experimental/coroutine>; with
// libstdc++'s <coroutine>, which clang 14 supports, it must be told. And
// asio/awaitable.hpp uses std::exchange without including <utility> (g++ 12).
// Better as a compile definition of sidecar_core in CMake; kept here until then.
#ifndef CLUSTER_BALANCE_SIDECAR_ADMIN_ASIO_COROUTINES_H_
#define CLUSTER_BALANCE_SIDECAR_ADMIN_ASIO_COROUTINES_H_

#include <utility>

#if defined(__clang__) && defined(__cpp_impl_coroutine) && !defined(BOOST_ASIO_HAS_CO_AWAIT)
#define BOOST_ASIO_HAS_CO_AWAIT 1
#endif

#endif  // CLUSTER_BALANCE_SIDECAR_ADMIN_ASIO_COROUTINES_H_
