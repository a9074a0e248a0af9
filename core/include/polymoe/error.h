// Errors thrown inside core. One base class, subclasses by category; every message starts with a
// stable tag ("format:", "config:", "io:", ...) and says where (file, line, byte offset, tensor).
#pragma once

#include <stdexcept>
#include <string>

namespace polymoe {

class Error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// A file's content is malformed (bad UTF-8, broken safetensors header, ...).
class FormatError : public Error {
public:
    explicit FormatError(const std::string &what) : Error("format: " + what) {}
};

// A setting, a model configuration or a command's arguments are invalid.
class ConfigError : public Error {
public:
    explicit ConfigError(const std::string &what) : Error("config: " + what) {}
};

// Reading or writing a file or the project database failed.
class IoError : public Error {
public:
    explicit IoError(const std::string &what) : Error("io: " + what) {}
};

// A plugin could not be loaded or reported a failure.
class PluginError : public Error {
public:
    explicit PluginError(const std::string &what) : Error("plugin: " + what) {}
};

// A CUDA call failed.
class CudaError : public Error {
public:
    explicit CudaError(const std::string &what) : Error("cuda: " + what) {}
};

// Long work stopped because the user asked it to. Not a failure: callers report it apart.
class Cancelled : public Error {
public:
    Cancelled() : Error("cancelled") {}
};

// Adds context while unwinding: rethrows the same category with "context: " in front.
[[noreturn]] void rethrowWithContext(const std::string &context);

} // namespace polymoe
