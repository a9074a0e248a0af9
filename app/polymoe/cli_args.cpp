// Argument access for commands, and JSON/text output.
#include "cli.h"

#include "polymoe/error.h"

#include <algorithm>

#include <charconv>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>

namespace polymoe::cli {

std::vector<Command> &registry()
{
    static std::vector<Command> commands;
    return commands;
}

std::string fmtDefault(double v)
{
    char buf[32];
    const auto r = std::to_chars(buf, buf + sizeof buf, v); // shortest round trip
    return std::string(buf, r.ptr);
}

std::string Args::get(const std::string &name, const std::string &fallback) const
{
    auto it = values.find(name);
    return it == values.end() ? fallback : it->second;
}

int64_t Args::getInt(const std::string &name, int64_t fallback) const
{
    auto it = values.find(name);
    if (it == values.end())
        return fallback;
    try {
        size_t used = 0;
        const long long v = std::stoll(it->second, &used);
        if (used != it->second.size())
            throw std::invalid_argument("trailing characters");
        return v;
    } catch (const std::exception &) {
        throw UsageError(name + " expects an integer, not '" + it->second + "'");
    }
}

int Args::getInt32(const std::string &name, int fallback, int lo, int hi) const
{
    const int64_t v = getInt(name, fallback);
    if (v < lo || v > hi)
        throw UsageError(name + " must be between " + std::to_string(lo) + " and " + std::to_string(hi) + ", not " +
                         std::to_string(v));
    return int(v);
}

double Args::getDouble(const std::string &name, double fallback) const
{
    auto it = values.find(name);
    if (it == values.end())
        return fallback;
    try {
        size_t used = 0;
        const double v = std::stod(it->second, &used);
        if (used != it->second.size())
            throw std::invalid_argument("trailing characters");
        if (!std::isfinite(v)) // no option means anything by NaN or an infinity
            throw std::invalid_argument("not finite");
        return v;
    } catch (const std::exception &) {
        throw UsageError(name + " expects a finite number, not '" + it->second + "'");
    }
}

std::vector<std::string> Args::getList(const std::string &name, const std::vector<std::string> &fallback) const
{
    auto it = values.find(name);
    if (it == values.end())
        return fallback;
    std::vector<std::string> out;
    std::string cur;
    for (char c : it->second + ",") {
        if (c == ',') {
            if (!cur.empty())
                out.push_back(cur);
            cur.clear();
        } else if (c != ' ') {
            cur += c;
        }
    }
    return out;
}

const Command *findCommand(const std::vector<std::string> &args, size_t *words)
{
    const Command *cmd = nullptr;
    size_t matched = 0;
    for (const auto &c : registry()) {
        std::vector<std::string> parts;
        for (size_t s = 0, e; s <= c.name.size(); s = e + 1) {
            e = c.name.find(' ', s);
            if (e == std::string::npos)
                e = c.name.size();
            parts.push_back(c.name.substr(s, e - s));
        }
        if (parts.size() <= args.size() && parts.size() > matched && std::equal(parts.begin(), parts.end(), args.begin())) {
            cmd = &c;
            matched = parts.size();
        }
    }
    if (words)
        *words = matched;
    return cmd;
}

int Context::printTable(const Args &a, const nlohmann::json &j, const std::string &markdown) const
{
    if (a.has("--out")) {
        std::ofstream out(a.get("--out"));
        out << markdown;
        if (!out)
            throw IoError(a.get("--out") + ": cannot write");
    }
    print(j, markdown);
    return kExitOk;
}

void Context::print(const nlohmann::json &j, const std::string &text) const
{
    if (quiet)
        return;
    if (json) // on one line when progress lines share stdout, so the stream stays one JSON object a line
        std::cout << (progress == "json" ? j.dump() : j.dump(2)) << std::endl;
    else
        std::cout << text << std::flush;
}

} // namespace polymoe::cli
