// Our own reader and writer of the Hugging Face safetensors format, and of checkpoint folders made
// of one `model.safetensors` or of shards listed in `model.safetensors.index.json`.
//
// File layout: 8-byte little-endian header length N, N bytes of JSON mapping each tensor name to
// {"dtype", "shape", "data_offsets": [begin, end]} (offsets relative to the byte after the header),
// an optional "__metadata__" string-to-string map, then the raw little-endian tensor data, packed
// without holes.
//
// Usage:
//   polymoe::SafetensorsFile file("model.safetensors");      // validates the whole header
//   at::Tensor w = file.tensor("lm_head.weight");            // owned CPU copy
//   at::Tensor v = file.view("lm_head.weight");              // zero-copy, keeps the mapping alive
//   polymoe::writeSafetensors("out.safetensors", {{"w", w}}, {{"format", "pt"}});
//   auto all = polymoe::loadCheckpointFolder("path/to/model");  // name -> tensor, shards merged
//
// Every problem with a file's content is a polymoe::FormatError naming the file, the tensor and the
// byte offsets; failed reads and writes are polymoe::IoError. Pickled PyTorch files (*.bin, *.pt)
// are refused: unpickling can run arbitrary code.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace polymoe {

// One header entry, validated.
struct SafetensorsTensorInfo {
    std::string dtype;                        // the file's spelling: "F32", "BF16", ...
    at::ScalarType scalarType = at::kFloat;   // the matching LibTorch type
    std::vector<int64_t> shape;               // empty for a scalar
    uint64_t begin = 0;                       // data_offsets[0], bytes after the header
    uint64_t end = 0;                         // data_offsets[1], one past the last byte
    uint64_t byteSize() const { return end - begin; }
};

// A safetensors file mapped read-only. The constructor validates the whole header (sizes, JSON,
// dtypes, shapes, offsets, no overlaps, no holes, no truncation) before anything is exposed, so
// the accessors below never read outside the file. Not copyable; cheap to move.
class SafetensorsFile {
public:
    // Header lengths at or above this are refused (the reference implementation's limit).
    static constexpr uint64_t kMaxHeaderBytes = 100'000'000;

    explicit SafetensorsFile(const std::filesystem::path &path);
    ~SafetensorsFile();
    SafetensorsFile(SafetensorsFile &&) noexcept;
    SafetensorsFile &operator=(SafetensorsFile &&) noexcept;
    SafetensorsFile(const SafetensorsFile &) = delete;
    SafetensorsFile &operator=(const SafetensorsFile &) = delete;

    const std::filesystem::path &path() const { return m_path; }
    std::vector<std::string> names() const;   // sorted by name
    bool contains(const std::string &name) const;
    // Throws FormatError when the file has no tensor of that name.
    const SafetensorsTensorInfo &info(const std::string &name) const;
    // An owned, contiguous CPU tensor copied out of the mapping.
    at::Tensor tensor(const std::string &name) const;
    // A CPU tensor over the mapped bytes without copying; it keeps the mapping alive after this
    // object is gone. The mapping is private copy-on-write: writing to a view never changes the
    // file, but other views of the same tensor from this object see the change. When the data is
    // not aligned to the element size (the format does not require it) this returns a copy.
    at::Tensor view(const std::string &name) const;
    const std::map<std::string, std::string> &metadata() const { return m_metadata; }
    uint64_t dataStart() const { return m_dataStart; }   // file offset of the data region

private:
    struct Mapping;
    std::filesystem::path m_path;
    std::shared_ptr<Mapping> m_mapping;
    uint64_t m_dataStart = 0;
    std::map<std::string, SafetensorsTensorInfo> m_tensors;
    std::map<std::string, std::string> m_metadata;
};

// The dtype names this implementation reads and writes: F64, F32, F16, BF16, I64, I32, I16, I8, U8,
// BOOL. Throws ConfigError for any other scalar type.
std::string safetensorsDtypeName(at::ScalarType type);

// Writes `tensors` (made contiguous and moved to the CPU) in the order: larger element size first,
// then by name, so every tensor is aligned to its element size. The header is padded with spaces
// to a multiple of 8 bytes, as Hugging Face does. Writes `path.tmp-XXXXXX` in the same folder,
// fsyncs and renames it into place: readers never see half a file. Duplicate or reserved names
// and unsupported dtypes are ConfigError; failed writes IoError. From a map: `{m.begin(), m.end()}`.
void writeSafetensors(const std::filesystem::path &path,
                      const std::vector<std::pair<std::string, at::Tensor>> &tensors,
                      const std::map<std::string, std::string> &metadata = {});

inline constexpr const char *kSafetensorsFileName = "model.safetensors";
inline constexpr const char *kSafetensorsIndexFileName = "model.safetensors.index.json";
// Hugging Face's default shard limit ("5GB", decimal).
inline constexpr uint64_t kDefaultMaxShardBytes = 5'000'000'000ULL;

// All tensors of a checkpoint folder, as owned CPU tensors by name. Reads
// `model.safetensors.index.json` when present (its "weight_map": tensor -> shard file), otherwise
// `model.safetensors`; `dir` may also name a single .safetensors file. FormatError for a missing
// shard, a tensor the index names that its shard lacks, a tensor found in two shards, and for a
// folder holding only pickled PyTorch files (never loaded). IoError when `dir` does not exist.
// With `sourceFiles`, also says which file each tensor came from (tensor name -> file path).
std::map<std::string, at::Tensor> loadCheckpointFolder(const std::filesystem::path &dir,
                                                       std::map<std::string, std::string> *sourceFiles = nullptr);

// Writes `tensors` into `dir` (created if needed): one `model.safetensors` when the data fits in
// `maxShardBytes`, else `model-00001-of-0000N.safetensors` shards (filled greedily in name order; a
// tensor larger than the limit gets a shard of its own) plus `model.safetensors.index.json`, which
// is written last. Each file goes through a temp file and a rename. Files of the other layout left
// from an earlier save (a stale index, old shards, a stale single file) are removed afterwards.
// Every file's metadata gets "format": "pt", which transformers expects.
void saveCheckpointFolder(const std::filesystem::path &dir, const std::map<std::string, at::Tensor> &tensors,
                          uint64_t maxShardBytes = kDefaultMaxShardBytes,
                          const std::map<std::string, std::string> &metadata = {});

} // namespace polymoe
