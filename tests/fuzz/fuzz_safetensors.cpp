// Fuzz target: a model.safetensors file; when its header is accepted, every tensor is read.
#include "fuzz_input_file.h"
#include "polymoe/error.h"
#include "safetensors.h"

#include <ATen/ATen.h>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const auto path = polymoe::fuzz::inputFile(data, size, ".safetensors");
    try {
        polymoe::SafetensorsFile f(path);
        for (const auto &name : f.names()) {
            (void)f.tensor(name).numel();
            (void)f.view(name).numel();
        }
    } catch (const polymoe::Error &) {
    }
    return 0;
}
