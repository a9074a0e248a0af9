// A small harness for the kernel tests: plain executables, because the GPU machine has no Qt (Qt Test
// is what the other suites use). Each check prints PASS/FAIL with its values; main returns the count of
// failures (0 = pass) or kSkip, which ctest reports as skipped (SKIP_RETURN_CODE).
#pragma once

#include <ATen/ATen.h>

#include <algorithm>
#include <cstdio>
#include <exception>
#include <functional>
#include <string>

namespace kcheck {

constexpr int kSkip = 77;

inline int &failures()
{
    static int n = 0;
    return n;
}
inline int &passes()
{
    static int n = 0;
    return n;
}

// A number for a message: 3 significant digits.
inline std::string num(double v)
{
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3g", v);
    return buf;
}

inline void check(bool ok, const std::string &what)
{
    std::printf("%s %s\n", ok ? "PASS" : "FAIL", what.c_str());
    ++(ok ? passes() : failures());
}

// max |a - b| / max(max |b|, tiny): the error normalised by the reference's scale.
inline double relErr(const at::Tensor &a, const at::Tensor &b)
{
    const at::Tensor ad = a.detach().to(at::kCPU).to(at::kDouble), bd = b.detach().to(at::kCPU).to(at::kDouble);
    if (ad.sizes() != bd.sizes())
        return 1e300;
    if (bd.numel() == 0)
        return 0.0;
    return (ad - bd).abs().max().item<double>() / std::max(bd.abs().max().item<double>(), 1e-300);
}

inline void checkClose(const at::Tensor &got, const at::Tensor &want, double tol, const std::string &what)
{
    const double e = relErr(got, want);
    check(e <= tol, what + ": normalised error " + num(e) + " (bound " + num(tol) + ")");
}

inline bool sameValues(const at::Tensor &a, const at::Tensor &b)
{
    const at::Tensor ac = a.detach().to(at::kCPU), bc = b.detach().to(at::kCPU);
    return ac.sizes() == bc.sizes() && ac.scalar_type() == bc.scalar_type() && at::equal(ac, bc);
}

// fn must throw; its message must contain `needle`.
inline void checkThrows(const std::function<void()> &fn, const std::string &needle, const std::string &what)
{
    try {
        fn();
        check(false, what + ": no exception");
    } catch (const std::exception &e) {
        const std::string msg = e.what();
        const std::string first = msg.substr(0, msg.find('\n'));
        check(msg.find(needle) != std::string::npos, what + ": message '" + first + "' contains '" + needle + "'");
    }
}

// Runs a named group; an exception inside counts as one failure and the rest continue.
inline void group(const std::string &name, const std::function<void()> &fn)
{
    std::printf("-- %s\n", name.c_str());
    try {
        fn();
    } catch (const std::exception &e) {
        check(false, name + ": threw " + std::string(e.what()).substr(0, 400));
    }
}

inline int finish(const char *suite)
{
    std::printf("%s: %d passed, %d failed\n", suite, passes(), failures());
    return failures() == 0 ? 0 : 1;
}

} // namespace kcheck
