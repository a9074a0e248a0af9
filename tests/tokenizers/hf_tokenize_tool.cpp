// hf_tokenize_tool: runs polymoe::HfTokenizer for tests/interop/check_hf_tokenizer.py.
//   hf_tokenize_tool TOKENIZER(.json|folder) INPUT.json OUTPUT.json
// INPUT holds {"texts": [...], "add_special_tokens": bool}; OUTPUT gets {"ids": [[...]...],
// "decoded": [...]} (decode without skipping special tokens).
#include "hf_tokenizer.h"

#include <nlohmann/json.hpp>

#include <fstream>
#include <iostream>
#include <sstream>

int main(int argc, char **argv)
{
    if (argc != 4) {
        std::cerr << "usage: hf_tokenize_tool TOKENIZER INPUT.json OUTPUT.json\n";
        return 2;
    }
    try {
        const auto tok = polymoe::loadHfTokenizerFolder(argv[1]);
        std::ifstream in(argv[2], std::ios::binary);
        std::stringstream buffer;
        buffer << in.rdbuf();
        const auto input = nlohmann::json::parse(buffer.str());
        const bool special = input.value("add_special_tokens", false);
        nlohmann::json ids = nlohmann::json::array(), decoded = nlohmann::json::array();
        for (const auto &t : input.at("texts")) {
            const auto encoded = tok->encode(t.get<std::string>(), special);
            ids.push_back(encoded);
            decoded.push_back(tok->decode(encoded));
        }
        std::ofstream out(argv[3], std::ios::binary);
        out << nlohmann::json{{"ids", ids}, {"decoded", decoded}}.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
        return out ? 0 : 1;
    } catch (const std::exception &e) {
        std::cerr << "hf_tokenize_tool: " << e.what() << "\n";
        return 1;
    }
}
