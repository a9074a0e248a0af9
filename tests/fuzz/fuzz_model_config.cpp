// Fuzz target: a config.json text, parsed, validated, sized and written back.
#include "model_config.h"
#include "polymoe/error.h"

#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const std::string json(reinterpret_cast<const char *>(data), size);
    try {
        const polymoe::ModelConfig c = polymoe::parseModelConfig(json, "fuzz/config.json");
        polymoe::validateModelConfig(c, "fuzz/config.json");
        (void)polymoe::impliedParameters(c);
        // What the writer makes of an accepted config must read back.
        (void)polymoe::parseModelConfig(polymoe::modelConfigToJson(c), "fuzz/config.json (written back)");
    } catch (const polymoe::Error &) {
    }
    return 0;
}
