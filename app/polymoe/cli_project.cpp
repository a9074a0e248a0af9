// polymoe project init|info
#include "cli.h"

#include "polymoe/corpus.h"
#include "polymoe/project_store.h"
#include "polymoe/project_tokenizer.h"
#include "polymoe/run_liveness.h"

#include <sstream>

namespace polymoe::cli {
namespace {

int projectInit(const Args &a, Context &ctx)
{
    std::filesystem::path path = a.positionals[0];
    auto store = ProjectStore::create(path);
    if (a.has("--name"))
        store.setSetting("name", a.get("--name"));
    ctx.print({{"project", std::filesystem::absolute(path).string()}, {"schema_version", store.schemaVersion()},
               {"data_dir", store.dataDir().string()}},
              "created project " + path.string() + " (schema version " + std::to_string(store.schemaVersion()) +
                  ")\nnext: polymoe corpus demo " + path.string() + "   or   polymoe corpus add " + path.string() +
                  " --lang CODE --group old|new FILE...\n");
    return kExitOk;
}

int projectInfo(const Args &a, Context &ctx)
{
    auto store = ProjectStore::open(a.positionals[0], true);
    nlohmann::json j = {{"project", std::filesystem::absolute(store.path()).string()},
                        {"name", store.setting("name").value_or("")},
                        {"created_with", store.setting("created_with").value_or("")},
                        {"schema_version", store.schemaVersion()}};
    std::ostringstream os;
    os << "project " << store.path().string() << " (schema " << store.schemaVersion() << ")\n";
    j["languages"] = nlohmann::json::array();
    for (const auto &l : store.languages()) {
        j["languages"].push_back({{"code", l.code}, {"name", l.name}, {"group", toString(l.group)}, {"wave", l.wave}});
        os << "  " << l.code << "  " << l.name << " (" << toString(l.group) << ")\n";
    }
    if (auto t = currentTokenizerRecord(store)) {
        j["tokenizer"] = {{"id", t->id}, {"backend", t->backend}, {"model_type", t->modelType},
                          {"vocab_size", t->vocabSize}, {"source", t->source}};
        os << "tokenizer: " << t->backend << " " << t->modelType << ", " << t->vocabSize << " pieces, " << t->source << "\n";
    } else {
        os << "tokenizer: none yet\n";
    }
    j["runs"] = nlohmann::json::array();
    const auto runs = store.runs();
    os << "runs: " << runs.size() << "\n";
    for (const auto &r : runs) {
        // "interrupted": recorded as running, but its process is gone (run_liveness.h).
        const std::string shown = displayStatus(r);
        j["runs"].push_back({{"id", r.id}, {"kind", r.kind}, {"status", shown}, {"stored_status", r.status},
                             {"started_at", r.startedAt}});
        os << "  run " << r.id << "  " << r.kind << "  " << shown << "  started " << r.startedAt << "\n";
    }
    ctx.print(j, os.str());
    return kExitOk;
}

Register initCmd({"project init", "create a new, empty project file (*.polymoe)", "FILE",
                  "Creates the SQLite project file and nothing else; its data folder FILE.d is made on demand.",
                  {{"--name", "NAME", "a display name for the project", ""}}, 1, 1, true, projectInit});
Register infoCmd({"project info", "show a project's languages, tokenizer and runs", "PROJECT", "", {}, 1, 1, true,
                  projectInfo});

} // namespace
} // namespace polymoe::cli
