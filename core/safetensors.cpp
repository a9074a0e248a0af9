// Safetensors reading (mmap + full header validation), atomic writing, and sharded checkpoint
// folders with a Hugging Face index. JSON stays in this file (nlohmann is private to core).
#include "safetensors.h"

#include "file_read.h"
#include "json_limits.h"

#include "polymoe/error.h"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static_assert(std::endian::native == std::endian::little,
              "safetensors data is little-endian; big-endian hosts would need byte swapping");

namespace fs = std::filesystem;

namespace polymoe {

namespace {

struct DtypeEntry {
    const char *name;
    at::ScalarType type;
    uint64_t size; // bytes per element
};

// What we read and write. Every one of these exists in LibTorch 1.13 and 2.x.
constexpr DtypeEntry kDtypes[] = {
    {"F64", at::kDouble, 8}, {"F32", at::kFloat, 4}, {"F16", at::kHalf, 2},  {"BF16", at::kBFloat16, 2},
    {"I64", at::kLong, 8},   {"I32", at::kInt, 4},   {"I16", at::kShort, 2}, {"I8", at::kChar, 1},
    {"U8", at::kByte, 1},    {"BOOL", at::kBool, 1},
};

// Valid safetensors dtypes we do not support (no common LibTorch 1.13 / 2.x type for them).
constexpr const char *kKnownUnsupportedDtypes[] = {"U16", "U32", "U64", "F8_E4M3", "F8_E5M2", "F8_E8M0",
                                                   "F6_E2M3", "F6_E3M2", "F4", "C64"};

const DtypeEntry *dtypeByName(const std::string &name)
{
    for (const auto &d : kDtypes)
        if (name == d.name)
            return &d;
    return nullptr;
}

const DtypeEntry *dtypeByType(at::ScalarType type)
{
    for (const auto &d : kDtypes)
        if (type == d.type)
            return &d;
    return nullptr;
}

std::string shapeString(const std::vector<int64_t> &shape)
{
    std::string s = "[";
    for (size_t i = 0; i < shape.size(); ++i)
        s += (i ? ", " : "") + std::to_string(shape[i]);
    return s + "]";
}

std::string offsetsString(uint64_t begin, uint64_t end)
{
    std::string s = "[";   // built by appending: GCC 12 warns falsely (-Wrestrict) on "[" + to_string()
    s += std::to_string(begin);
    s += ", ";
    s += std::to_string(end);
    s += "]";
    return s;
}

// "file bytes X..Y" for data offsets, or a note when the sum would not fit in 64 bits.
std::string fileBytes(uint64_t dataStart, uint64_t begin, uint64_t end)
{
    uint64_t a = 0, b = 0;
    if (__builtin_add_overflow(dataStart, begin, &a) || __builtin_add_overflow(dataStart, end, &b))
        return "file bytes beyond 2^64";
    return "file bytes " + std::to_string(a) + ".." + std::to_string(b);
}

[[noreturn]] void fail(const fs::path &path, const std::string &what)
{
    throw FormatError(path.string() + ": " + what);
}

[[noreturn]] void failTensor(const fs::path &path, const std::string &name, const std::string &what)
{
    throw FormatError(path.string() + ": tensor '" + name + "': " + what);
}

std::string errnoText()
{
    return std::strerror(errno);
}

// Writes a file next to its target and renames it into place on commit(); an uncommitted file is
// removed, so a failure or an exception never leaves half a file under the target name.
class AtomicFile {
public:
    explicit AtomicFile(fs::path target) : m_target(std::move(target))
    {
        std::string tmpl = m_target.string() + ".tmp-XXXXXX";
        m_fd = ::mkstemp(tmpl.data());
        if (m_fd < 0)
            throw IoError(m_target.string() + ": cannot create a temporary file beside it: " + errnoText());
        m_tmp = tmpl;
        ::fchmod(m_fd, 0644);
    }
    ~AtomicFile()
    {
        if (m_fd >= 0)
            ::close(m_fd);
        if (!m_committed)
            ::unlink(m_tmp.c_str());
    }
    AtomicFile(const AtomicFile &) = delete;
    AtomicFile &operator=(const AtomicFile &) = delete;

    void write(const void *data, uint64_t size)
    {
        auto p = static_cast<const char *>(data);
        while (size > 0) {
            const ssize_t n = ::write(m_fd, p, std::min<uint64_t>(size, 1u << 30));
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                throw IoError(m_tmp + ": write failed at byte offset " + std::to_string(m_written) + ": " +
                              errnoText());
            p += n;
            size -= uint64_t(n);
            m_written += uint64_t(n);
        }
    }
    void write(const std::string &s) { write(s.data(), s.size()); }

    void commit()
    {
        if (::fsync(m_fd) != 0)
            throw IoError(m_tmp + ": fsync failed: " + errnoText());
        const int fd = m_fd;
        m_fd = -1;
        if (::close(fd) != 0)
            throw IoError(m_tmp + ": close failed: " + errnoText());
        if (::rename(m_tmp.c_str(), m_target.c_str()) != 0)
            throw IoError(m_tmp + ": cannot rename to " + m_target.string() + ": " + errnoText());
        m_committed = true;
        // Make the rename itself durable; failure here loses nothing already written.
        fs::path dir = m_target.parent_path();
        if (dir.empty())
            dir = ".";
        const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            ::fsync(dfd);
            ::close(dfd);
        }
    }

private:
    fs::path m_target;
    std::string m_tmp;
    int m_fd = -1;
    uint64_t m_written = 0;
    bool m_committed = false;
};

} // namespace

// ---------------------------------------------------------------------------------------------
// Reader

struct SafetensorsFile::Mapping {
    void *data = nullptr;
    size_t size = 0;
    ~Mapping()
    {
        if (data)
            ::munmap(data, size);
    }
};

namespace {

// The whole file mapped (private and writable: views may be written to, copy-on-write, without a
// segfault; the file itself is opened read-only and never changes). Refuses what is not a regular
// file of at least the 8-byte header length; O_NONBLOCK so that a FIFO is refused, not waited on.
std::pair<void *, uint64_t> mapWholeFile(const fs::path &path)
{
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        throw IoError(path.string() + ": cannot open: " + errnoText());
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        ::close(fd);
        throw IoError(path.string() + ": not a regular file");
    }
    const uint64_t fileSize = uint64_t(st.st_size);
    if (fileSize < 8) {
        ::close(fd);
        fail(path, "file is " + std::to_string(fileSize) + " bytes, shorter than the 8-byte header length");
    }
    void *data = ::mmap(nullptr, fileSize, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    const int mapErrno = errno;
    ::close(fd);
    if (data == MAP_FAILED)
        throw IoError(path.string() + ": mmap failed: " + std::strerror(mapErrno));
    return {data, fileSize};
}

// The JSON header, an object without duplicate top-level keys (nlohmann would silently keep the
// last one).
nlohmann::json parseHeader(const fs::path &path, std::string_view text, const std::string &headerRange)
{
    std::set<std::string> seen;
    std::string duplicate;
    nlohmann::json header;
    checkJsonDepth(text, path.string() + ": header (" + headerRange + ")");
    try {
        header = nlohmann::json::parse(
            text.begin(), text.end(),
            [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json &parsed) {
                if (event == nlohmann::json::parse_event_t::key && depth == 1 && parsed.is_string()) {
                    if (!seen.insert(parsed.get<std::string>()).second && duplicate.empty())
                        duplicate = parsed.get<std::string>();
                }
                return true;
            });
    } catch (const nlohmann::json::parse_error &e) {
        fail(path, "invalid JSON in the header at file byte " + std::to_string(8 + (e.byte ? e.byte - 1 : 0)) +
                       " (" + headerRange + "): " + e.what());
    } catch (const nlohmann::json::exception &) { // out_of_range 406: a number beyond a double's range
        fail(path, "invalid JSON in the header (" + headerRange + "): a number is out of range");
    }
    if (!header.is_object())
        fail(path, "the header must be a JSON object (" + headerRange + ")");
    if (!duplicate.empty())
        fail(path, "duplicate key '" + duplicate + "' in the header (" + headerRange + ")");
    return header;
}

// One tensor's header entry: a known dtype, a shape of non-negative integers whose byte size does
// not overflow, and data_offsets spanning exactly that many bytes.
SafetensorsTensorInfo tensorInfo(const fs::path &path, const std::string &name, const nlohmann::json &value,
                                 const std::string &headerRange, uint64_t dataStart)
{
    if (!value.is_object())
        failTensor(path, name, "header entry is not a JSON object (" + headerRange + ")");
    SafetensorsTensorInfo info;

    const auto dtypeIt = value.find("dtype");
    if (dtypeIt == value.end() || !dtypeIt->is_string())
        failTensor(path, name, "missing or non-string \"dtype\" (" + headerRange + ")");
    info.dtype = dtypeIt->get<std::string>();
    const DtypeEntry *dtype = dtypeByName(info.dtype);
    if (!dtype) {
        for (const char *known : kKnownUnsupportedDtypes)
            if (info.dtype == known)
                failTensor(path, name, "dtype '" + info.dtype + "' is valid safetensors but not supported by "
                                       "PolyMoE (" + headerRange + ")");
        failTensor(path, name, "unknown dtype '" + info.dtype + "' (" + headerRange + ")");
    }
    info.scalarType = dtype->type;

    const auto shapeIt = value.find("shape");
    if (shapeIt == value.end() || !shapeIt->is_array())
        failTensor(path, name, "missing \"shape\" array (" + headerRange + ")");
    uint64_t numel = 1;
    bool overflow = false;
    for (const auto &dim : *shapeIt) {
        if (dim.is_number_integer() && !dim.is_number_unsigned() && dim.get<int64_t>() < 0)
            failTensor(path, name, "negative dimension " + std::to_string(dim.get<int64_t>()) + " in shape " +
                                       shapeIt->dump() + " (" + headerRange + ")");
        if (!dim.is_number_unsigned())
            failTensor(path, name, "shape " + shapeIt->dump() + " must be an array of non-negative integers (" +
                                       headerRange + ")");
        const uint64_t d = dim.get<uint64_t>();
        if (d > uint64_t(INT64_MAX))
            failTensor(path, name, "dimension " + std::to_string(d) + " is too large (" + headerRange + ")");
        info.shape.push_back(int64_t(d));
        overflow = overflow || __builtin_mul_overflow(numel, d, &numel);
    }
    uint64_t needed = 0;
    overflow = overflow || __builtin_mul_overflow(numel, dtype->size, &needed);
    if (overflow)
        failTensor(path, name, "shape " + shapeString(info.shape) + " is too large (" + headerRange + ")");

    const auto offIt = value.find("data_offsets");
    if (offIt == value.end() || !offIt->is_array() || offIt->size() != 2 || !(*offIt)[0].is_number_unsigned() ||
        !(*offIt)[1].is_number_unsigned())
        failTensor(path, name, "\"data_offsets\" must be two non-negative integers (" + headerRange + ")");
    info.begin = (*offIt)[0].get<uint64_t>();
    info.end = (*offIt)[1].get<uint64_t>();
    if (info.begin > info.end)
        failTensor(path, name, "data_offsets " + offsetsString(info.begin, info.end) + " are reversed");
    if (info.end - info.begin != needed)
        failTensor(path, name, "data_offsets " + offsetsString(info.begin, info.end) + " (" +
                                   fileBytes(dataStart, info.begin, info.end) + ") span " +
                                   std::to_string(info.end - info.begin) + " bytes but shape " +
                                   shapeString(info.shape) + " of " + info.dtype + " needs " +
                                   std::to_string(needed) + " bytes");
    return info;
}

// Layout: sorted by offset, the tensors must tile [0, dataSize) exactly, as the format requires. Each
// failure names the tensor, its offsets and the file bytes concerned.
void checkLayout(const fs::path &path, const std::map<std::string, SafetensorsTensorInfo> &tensors,
                 uint64_t dataStart, uint64_t fileSize)
{
    const uint64_t dataSize = fileSize - dataStart;
    std::vector<const std::pair<const std::string, SafetensorsTensorInfo> *> order;
    for (const auto &entry : tensors)
        order.push_back(&entry);
    std::sort(order.begin(), order.end(), [](auto *a, auto *b) {
        return std::pair(a->second.begin, a->second.end) < std::pair(b->second.begin, b->second.end);
    });
    uint64_t expected = 0;
    const std::pair<const std::string, SafetensorsTensorInfo> *previous = nullptr;
    for (const auto *entry : order) {
        const auto &[name, info] = *entry;
        if (info.begin < expected)
            failTensor(path, name, "data_offsets " + offsetsString(info.begin, info.end) + " (" +
                                       fileBytes(dataStart, info.begin, info.end) + ") overlap tensor '" +
                                       previous->first + "' at " +
                                       offsetsString(previous->second.begin, previous->second.end));
        if (info.begin > expected) {
            if (info.begin >= dataSize)
                failTensor(path, name, "data_offsets " + offsetsString(info.begin, info.end) +
                                           " are out of range: the data region holds " + std::to_string(dataSize) +
                                           " bytes (" + fileBytes(dataStart, 0, dataSize) + ")");
            failTensor(path, name, "hole of " + std::to_string(info.begin - expected) + " bytes before data_offsets " +
                                       offsetsString(info.begin, info.end) + " (" +
                                       fileBytes(dataStart, expected, info.begin) + " belong to no tensor" +
                                       (previous ? "; previous tensor '" + previous->first + "'" : "") +
                                       "); the format requires tensors packed without holes");
        }
        expected = info.end;
        previous = entry;
    }
    if (expected > dataSize) {
        // Name the first tensor that does not fit.
        for (const auto *entry : order) {
            if (entry->second.end > dataSize)
                failTensor(path, entry->first,
                           "file is truncated: the header describes " + std::to_string(expected) +
                               " bytes of tensor data but only " + std::to_string(dataSize) +
                               " follow the header (file size " + std::to_string(fileSize) +
                               "); this tensor needs data_offsets " +
                               offsetsString(entry->second.begin, entry->second.end) + " (" +
                               fileBytes(dataStart, entry->second.begin, entry->second.end) + ")");
        }
    }
    if (expected < dataSize)
        fail(path, std::to_string(dataSize - expected) + " trailing bytes after the last tensor (" +
                       fileBytes(dataStart, expected, dataSize) + ")");
}

} // namespace

SafetensorsFile::SafetensorsFile(const fs::path &path) : m_path(path)
{
    const auto [data, fileSize] = mapWholeFile(path);
    m_mapping = std::make_shared<Mapping>();
    m_mapping->data = data;
    m_mapping->size = fileSize;
    const auto *bytes = static_cast<const unsigned char *>(data);

    uint64_t headerLen = 0; // little-endian u64
    for (int i = 7; i >= 0; --i)
        headerLen = (headerLen << 8) | bytes[i];
    if (headerLen >= kMaxHeaderBytes)
        fail(path, "header length " + std::to_string(headerLen) + " (bytes 0..8) exceeds the 100 MB limit");
    if (headerLen > fileSize - 8)
        fail(path, "header length " + std::to_string(headerLen) + " (bytes 0..8) runs past the end of the file (" +
                       std::to_string(fileSize) + " bytes)");
    m_dataStart = 8 + headerLen;
    const std::string headerRange = "header bytes 8.." + std::to_string(m_dataStart);
    const nlohmann::json header =
        parseHeader(path, std::string_view(reinterpret_cast<const char *>(bytes + 8), size_t(headerLen)), headerRange);

    for (const auto &[name, value] : header.items()) {
        if (name == "__metadata__") {
            if (!value.is_object())
                fail(path, "\"__metadata__\" must be an object of strings (" + headerRange + ")");
            for (const auto &[key, v] : value.items()) {
                if (!v.is_string())
                    fail(path, "\"__metadata__\" entry '" + key + "' is not a string (" + headerRange + ")");
                m_metadata.emplace(key, v.get<std::string>());
            }
            continue;
        }
        m_tensors.emplace(name, tensorInfo(path, name, value, headerRange, m_dataStart));
    }
    checkLayout(path, m_tensors, m_dataStart, fileSize);
}

SafetensorsFile::~SafetensorsFile() = default;
SafetensorsFile::SafetensorsFile(SafetensorsFile &&) noexcept = default;
SafetensorsFile &SafetensorsFile::operator=(SafetensorsFile &&) noexcept = default;

std::vector<std::string> SafetensorsFile::names() const
{
    std::vector<std::string> out;
    out.reserve(m_tensors.size());
    for (const auto &entry : m_tensors)
        out.push_back(entry.first);
    return out;
}

bool SafetensorsFile::contains(const std::string &name) const
{
    return m_tensors.count(name) != 0;
}

const SafetensorsTensorInfo &SafetensorsFile::info(const std::string &name) const
{
    const auto it = m_tensors.find(name);
    if (it == m_tensors.end())
        failTensor(m_path, name, "no tensor of that name in the file");
    return it->second;
}

at::Tensor SafetensorsFile::tensor(const std::string &name) const
{
    const SafetensorsTensorInfo &i = info(name);
    at::Tensor out = at::empty(i.shape, at::TensorOptions().dtype(i.scalarType));
    if (i.byteSize() > 0)
        std::memcpy(out.data_ptr(), static_cast<const char *>(m_mapping->data) + m_dataStart + i.begin, i.byteSize());
    return out;
}

at::Tensor SafetensorsFile::view(const std::string &name) const
{
    const SafetensorsTensorInfo &i = info(name);
    char *p = static_cast<char *>(m_mapping->data) + m_dataStart + i.begin;
    const uint64_t elementSize = dtypeByType(i.scalarType)->size;
    if (i.byteSize() == 0 || reinterpret_cast<uintptr_t>(p) % elementSize != 0)
        return tensor(name);
    auto keepAlive = m_mapping;
    return at::from_blob(
        p, i.shape, [keepAlive](void *) mutable { keepAlive.reset(); }, at::TensorOptions().dtype(i.scalarType));
}

// ---------------------------------------------------------------------------------------------
// Writer

std::string safetensorsDtypeName(at::ScalarType type)
{
    if (const DtypeEntry *d = dtypeByType(type))
        return d->name;
    throw ConfigError(std::string("scalar type ") + c10::toString(type) + " cannot be stored in safetensors by PolyMoE");
}

void writeSafetensors(const fs::path &path, const std::vector<std::pair<std::string, at::Tensor>> &tensors,
                      const std::map<std::string, std::string> &metadata)
{
    struct Planned {
        std::string name;
        at::Tensor data;
        const DtypeEntry *dtype;
        uint64_t begin = 0, end = 0;
    };
    const std::string where = "writing " + path.string() + ": ";
    std::vector<Planned> plan;
    std::set<std::string> names;
    for (const auto &[name, t] : tensors) {
        if (name == "__metadata__")
            throw ConfigError(where + "'__metadata__' is reserved and cannot name a tensor");
        if (!names.insert(name).second)
            throw ConfigError(where + "tensor '" + name + "' appears twice");
        if (!t.defined())
            throw ConfigError(where + "tensor '" + name + "' is undefined");
        if (t.layout() != at::kStrided)
            throw ConfigError(where + "tensor '" + name + "' is not a dense (strided) tensor");
        const DtypeEntry *d = dtypeByType(t.scalar_type());
        if (!d)
            throw ConfigError(where + "tensor '" + name + "': scalar type " + c10::toString(t.scalar_type()) +
                              " cannot be stored (supported: F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL)");
        plan.push_back({name, t.detach().cpu().contiguous(), d});
    }
    // Larger elements first, so each tensor starts at a multiple of its element size.
    std::stable_sort(plan.begin(), plan.end(), [](const Planned &a, const Planned &b) {
        if (a.dtype->size != b.dtype->size)
            return a.dtype->size > b.dtype->size;
        return a.name < b.name;
    });

    nlohmann::json header = nlohmann::json::object();
    if (!metadata.empty())
        header["__metadata__"] = metadata;
    uint64_t offset = 0;
    for (Planned &p : plan) {
        p.begin = offset;
        p.end = offset + uint64_t(p.data.numel()) * p.dtype->size;
        offset = p.end;
        header[p.name] = {{"dtype", p.dtype->name}, {"shape", p.data.sizes().vec()}, {"data_offsets", {p.begin, p.end}}};
    }
    std::string text;
    try {
        text = header.dump();
    } catch (const nlohmann::json::exception &e) {
        throw ConfigError(where + "cannot encode the header (tensor names and metadata must be UTF-8): " + e.what());
    }
    // Pad with spaces so the data starts at a multiple of 8 bytes, as Hugging Face does.
    text.append((8 - text.size() % 8) % 8, ' ');

    unsigned char lengthBytes[8];
    for (int i = 0; i < 8; ++i)
        lengthBytes[i] = static_cast<unsigned char>(uint64_t(text.size()) >> (8 * i));

    AtomicFile file(path);
    file.write(lengthBytes, 8);
    file.write(text);
    for (const Planned &p : plan)
        if (p.end > p.begin)
            file.write(p.data.data_ptr(), p.end - p.begin);
    file.commit();
}

// ---------------------------------------------------------------------------------------------
// Checkpoint folders

namespace {

bool isPickleFile(const fs::path &p)
{
    const std::string ext = p.extension().string();
    return ext == ".bin" || ext == ".pt" || ext == ".pth" || ext == ".ckpt" || ext == ".pkl";
}

[[noreturn]] void refusePickle(const fs::path &where, const std::vector<std::string> &files)
{
    std::string list;
    for (size_t i = 0; i < files.size() && i < 5; ++i)
        list += (i ? ", " : "") + files[i];
    if (files.size() > 5)
        list += " and " + std::to_string(files.size() - 5) + " more";
    throw FormatError(where.string() + ": holds only pickled PyTorch weights (" + list +
                      "). PolyMoE never loads pickle files (*.bin, *.pt, *.pth): unpickling can run arbitrary "
                      "code. Convert the checkpoint to safetensors first, e.g. in Python with transformers: "
                      "model.save_pretrained(dir, safe_serialization=True), or "
                      "safetensors.torch.save_file(torch.load(path, weights_only=True), 'model.safetensors')");
}

// "model-00001-of-00003.safetensors"
bool isShardFileName(const std::string &n)
{
    const std::string prefix = "model-", middle = "-of-", suffix = ".safetensors";
    if (n.size() != prefix.size() + 5 + middle.size() + 5 + suffix.size())
        return false;
    auto digits = [&](size_t at) {
        return std::all_of(n.begin() + long(at), n.begin() + long(at + 5), [](char c) { return c >= '0' && c <= '9'; });
    };
    return n.compare(0, prefix.size(), prefix) == 0 && digits(prefix.size()) &&
           n.compare(prefix.size() + 5, middle.size(), middle) == 0 && digits(prefix.size() + 5 + middle.size()) &&
           n.compare(n.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string shardFileName(size_t index, size_t count)
{
    char buf[64];
    std::snprintf(buf, sizeof buf, "model-%05zu-of-%05zu.safetensors", index, count);
    return buf;
}

std::map<std::string, at::Tensor> loadSingleFile(const fs::path &path, std::map<std::string, std::string> *sources)
{
    SafetensorsFile file(path);
    std::map<std::string, at::Tensor> out;
    for (const std::string &name : file.names()) {
        out.emplace(name, file.tensor(name));
        if (sources)
            (*sources)[name] = path.string();
    }
    return out;
}

std::map<std::string, at::Tensor> loadSharded(const fs::path &dir, const fs::path &indexPath,
                                              std::map<std::string, std::string> *sources)
{
    const std::string text = readRegularFile(indexPath, int64_t(64) << 20);
    nlohmann::json index;
    checkJsonDepth(text, indexPath.string());
    try {
        index = nlohmann::json::parse(text);
    } catch (const nlohmann::json::parse_error &e) {
        fail(indexPath, "invalid JSON at byte " + std::to_string(e.byte ? e.byte - 1 : 0) + ": " + e.what());
    } catch (const nlohmann::json::exception &) { // out_of_range 406: a number beyond a double's range
        fail(indexPath, "invalid JSON: a number is out of range");
    }
    if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object())
        fail(indexPath, "missing \"weight_map\" object");

    std::map<std::string, std::vector<std::string>> byShard; // shard file -> tensor names
    for (const auto &[name, shard] : index["weight_map"].items()) {
        if (!shard.is_string())
            fail(indexPath, "weight_map entry for tensor '" + name + "' is not a file name");
        const std::string file = shard.get<std::string>();
        if (file.empty() || file == "." || file == ".." || fs::path(file).filename().string() != file)
            fail(indexPath, "tensor '" + name + "' maps to '" + file + "', which is not a file name inside " +
                                dir.string());
        byShard[file].push_back(name);
    }

    std::map<std::string, at::Tensor> out;
    std::map<std::string, std::string> origin; // tensor -> shard file
    for (const auto &[shard, names] : byShard) {
        const fs::path shardPath = dir / shard;
        if (!fs::exists(shardPath))
            fail(indexPath, "shard '" + shard + "' (listed for tensor '" + names.front() + "'" +
                                (names.size() > 1 ? " and " + std::to_string(names.size() - 1) + " more" : "") +
                                ") does not exist in " + dir.string());
        SafetensorsFile file(shardPath);
        for (const std::string &name : names)
            if (!file.contains(name))
                fail(indexPath, "tensor '" + name + "' is mapped to " + shardPath.string() +
                                    ", which has no tensor of that name");
        for (const std::string &name : file.names()) {
            const auto [it, inserted] = origin.emplace(name, shard);
            if (!inserted)
                fail(dir, "tensor '" + name + "' appears in two shards, " + it->second + " and " + shard);
            out.emplace(name, file.tensor(name));
            if (sources)
                (*sources)[name] = shardPath.string();
        }
    }
    return out;
}

void removeIfExists(const fs::path &p)
{
    std::error_code ec;
    fs::remove(p, ec);
    if (ec)
        throw IoError(p.string() + ": cannot remove stale file: " + ec.message());
}

} // namespace

std::map<std::string, at::Tensor> loadCheckpointFolder(const fs::path &dir, std::map<std::string, std::string> *sources)
{
    std::error_code ec;
    const fs::file_status st = fs::status(dir, ec);
    if (!fs::exists(st))
        throw IoError(dir.string() + ": no such file or folder");
    if (fs::is_regular_file(st)) {
        if (isPickleFile(dir))
            refusePickle(dir, {dir.filename().string()});
        return loadSingleFile(dir, sources);
    }
    if (!fs::is_directory(st))
        throw IoError(dir.string() + ": neither a folder nor a file");

    if (fs::exists(dir / kSafetensorsIndexFileName))
        return loadSharded(dir, dir / kSafetensorsIndexFileName, sources);
    if (fs::exists(dir / kSafetensorsFileName))
        return loadSingleFile(dir / kSafetensorsFileName, sources);

    std::vector<std::string> pickles;
    for (const auto &entry : fs::directory_iterator(dir, ec))
        if (entry.is_regular_file() && isPickleFile(entry.path()))
            pickles.push_back(entry.path().filename().string());
    std::sort(pickles.begin(), pickles.end());
    if (!pickles.empty())
        refusePickle(dir, pickles);
    throw FormatError(dir.string() + ": no " + kSafetensorsFileName + " or " + kSafetensorsIndexFileName +
                      " in this folder");
}

void saveCheckpointFolder(const fs::path &dir, const std::map<std::string, at::Tensor> &tensors,
                          uint64_t maxShardBytes, const std::map<std::string, std::string> &metadata)
{
    if (maxShardBytes == 0)
        throw ConfigError("saving " + dir.string() + ": the shard size limit must be positive");
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec)
        throw IoError(dir.string() + ": cannot create folder: " + ec.message());
    std::map<std::string, std::string> meta = metadata;
    meta.emplace("format", "pt");

    // Greedy in name order; a tensor over the limit gets a shard of its own.
    std::vector<std::vector<std::pair<std::string, at::Tensor>>> shards(1);
    uint64_t shardBytes = 0, totalBytes = 0;
    for (const auto &[name, t] : tensors) {
        const uint64_t bytes = t.defined() ? uint64_t(t.numel()) * t.element_size() : 0;
        if (!shards.back().empty() && shardBytes + bytes > maxShardBytes) {
            shards.emplace_back();
            shardBytes = 0;
        }
        shards.back().emplace_back(name, t);
        shardBytes += bytes;
        totalBytes += bytes;
    }

    std::set<std::string> keep;
    if (shards.size() == 1) {
        writeSafetensors(dir / kSafetensorsFileName, shards.front(), meta);
        keep.insert(kSafetensorsFileName);
        removeIfExists(dir / kSafetensorsIndexFileName);
    } else {
        nlohmann::json weightMap = nlohmann::json::object();
        for (size_t i = 0; i < shards.size(); ++i) {
            const std::string file = shardFileName(i + 1, shards.size());
            writeSafetensors(dir / file, shards[i], meta);
            keep.insert(file);
            for (const auto &entry : shards[i])
                weightMap[entry.first] = file;
        }
        nlohmann::json index = {{"metadata", {{"total_size", totalBytes}}}, {"weight_map", weightMap}};
        AtomicFile indexFile(dir / kSafetensorsIndexFileName);
        indexFile.write(index.dump(2) + "\n");
        indexFile.commit(); // the index makes the new shards the checkpoint
        removeIfExists(dir / kSafetensorsFileName);
    }
    std::vector<fs::path> stale; // collected first: no removing while the folder is being listed
    for (const auto &entry : fs::directory_iterator(dir, ec)) {
        const std::string name = entry.path().filename().string();
        if (isShardFileName(name) && !keep.count(name))
            stale.push_back(entry.path());
    }
    for (const fs::path &p : stale)
        removeIfExists(p);
}

} // namespace polymoe
