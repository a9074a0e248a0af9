// Fuzz target: a tokenizer.json text; when it loads, a few texts are encoded and decoded with it.
#include "hf_tokenizer.h"
#include "polymoe/error.h"

#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const std::string json(reinterpret_cast<const char *>(data), size);
    try {
        auto tok = polymoe::loadHfTokenizer(json, "fuzz/tokenizer.json");
        for (const std::string &text : {std::string("Hello world, 123!"), std::string("Gr\xc3\xbc\xc3\x9f" "e \xd0\xbc\xd0\xb8\xd1\x80\n\t  x"),
                                       json.substr(0, 48)}) {
            const auto ids = tok->encode(text, true);
            (void)tok->decode(ids, false);
            (void)tok->decode(ids, true);
        }
    } catch (const polymoe::Error &) {
        // A refusal with a message is the expected outcome of most inputs.
    }
    return 0;
}
