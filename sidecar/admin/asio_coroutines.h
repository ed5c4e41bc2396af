// Boost.Asio's C++20 coroutine support (asio::awaitable, co_spawn,
// use_awaitable, redirect_error, this_coro) made to work with Debian 12's
// compilers. Include it first, before any other Boost.Asio header, in a file
// that uses coroutines, instead of including those headers directly:
//
// - Boost 1.74 turns its coroutine support on under clang only with libc++'s
//   <experimental/coroutine>; clang 14 with libstdc++'s <coroutine> works too,
//   but Asio must be told (BOOST_ASIO_HAS_CO_AWAIT).
// - clang 14 cannot compile Asio's coroutines with -fsanitize=function (part
//   of -fsanitize=undefined): "Cannot represent a difference across sections".
//   That check is turned off for the functions declared in these headers only.
//
// (The <utility> that asio/awaitable.hpp misses under g++ 12 is included first in
// every translation unit by CMake's sidecar_asio target.)
#ifndef CLUSTER_BALANCE_SIDECAR_ADMIN_ASIO_COROUTINES_H_
#define CLUSTER_BALANCE_SIDECAR_ADMIN_ASIO_COROUTINES_H_

#if defined(__clang__) && defined(__cpp_impl_coroutine) && !defined(BOOST_ASIO_HAS_CO_AWAIT)
#define BOOST_ASIO_HAS_CO_AWAIT 1
#endif

#if defined(__clang__)
#pragma clang attribute push(__attribute__((no_sanitize("function"))), apply_to = function)
#endif
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#if defined(__clang__)
#pragma clang attribute pop
#endif

#endif  // CLUSTER_BALANCE_SIDECAR_ADMIN_ASIO_COROUTINES_H_
