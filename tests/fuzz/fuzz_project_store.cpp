// Fuzz target: a project file (SQLite) opened read-only, its tables listed.
#include "fuzz_input_file.h"
#include "polymoe/error.h"
#include "polymoe/project_store.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const auto path = polymoe::fuzz::inputFile(data, size, ".polymoe");
    try {
        auto store = polymoe::ProjectStore::open(path, /*readOnly=*/true);
        (void)store.languages();
        (void)store.models();
        (void)store.runs();
        (void)store.allocations();
    } catch (const polymoe::Error &) {
    }
    return 0;
}
