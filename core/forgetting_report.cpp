// The forgetting report (METHOD.md section 8), assembled from the project store: evaluations, runs,
// model configs and router statistics. See polymoe/forgetting_report.h.
#include "polymoe/forgetting_report.h"

#include "polymoe/error.h"
#include "polymoe/training.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <set>
#include <sstream>
#include <tuple>

namespace polymoe {

namespace {

const char *roleOf(const std::string &runKind, const std::string &kind)
{
    if (runKind == "pretrain" || kind == "base" || kind == "imported")
        return "base";
    if (runKind == "finetune")
        return "full fine-tuning";
    if (runKind == "stage1")
        return "MoE stage 1";
    if (runKind == "stage2")
        return "MoE stage 2";
    return nullptr;
}

// Total and per-token weights from a config.json text: an MoE layer with N_i experts and top-k
// uses min(k, N_i) of its experts per token (METHOD.md section 3).
void countFromConfig(ReportModel &m, const std::string &configText)
{
    const auto c = nlohmann::json::parse(configText, nullptr, false);
    if (!c.is_object())
        return;
    const int64_t d = c.value("hidden_size", int64_t(0)), f = c.value("intermediate_size", int64_t(0));
    int64_t inactive = 0;
    if (c.contains("polymoe") && c["polymoe"].is_object()) {
        const auto &p = c["polymoe"];
        m.experts = p.value("experts_per_layer", std::vector<int>{});
        m.topK = p.value("top_k", 2);
        for (int n : m.experts)
            inactive += std::max(0, n - std::min(m.topK, n)) * 3 * d * f;
    }
    m.activeParametersPerToken = m.parameters - inactive;
}

double lastMetric(const ProjectStore &store, int64_t runId, const std::string &name)
{
    const auto s = store.metricSeries(runId, name);
    return s.empty() ? 0.0 : s.back().second;
}

std::string fmt(const char *f, double v)
{
    char buf[64];
    std::snprintf(buf, sizeof buf, f, v);
    return buf;
}

nlohmann::json num(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }

// (the base, the model named) among the report's models; null where absent.
std::pair<const ReportModel *, const ReportModel *> baseAndModel(const ForgettingReport &r, const std::string &model)
{
    const ReportModel *b = nullptr, *m = nullptr;
    for (const auto &x : r.models) {
        if (x.name == r.base)
            b = &x;
        if (x.name == model)
            m = &x;
    }
    return {b, m};
}

} // namespace

double ForgettingReport::ratio(const std::string &model, const std::string &language) const
{
    const auto [b, m] = baseAndModel(*this, model);
    if (!b || !m)
        return std::nan("");
    auto bi = b->perplexity.find(language), mi = m->perplexity.find(language);
    if (bi == b->perplexity.end() || mi == m->perplexity.end() || !(bi->second > 0))
        return std::nan("");
    return mi->second / bi->second;
}

double ForgettingReport::probeRatio(const std::string &model, const std::string &probe) const
{
    const auto [b, m] = baseAndModel(*this, model);
    if (!b || !m)
        return std::nan("");
    auto bi = b->probes.find(probe), mi = m->probes.find(probe);
    if (bi == b->probes.end() || mi == m->probes.end() || !(bi->second.perplexity > 0))
        return std::nan("");
    return mi->second.perplexity / bi->second.perplexity;
}

namespace {

// The named base, or else the first model without a parent (the first model when every one has one).
ModelRecord reportBase(const ProjectStore &store, const std::vector<ModelRecord> &all, const std::string &baseName)
{
    if (all.empty())
        throw ConfigError(store.path().string() + ": the project has no model yet; nothing to report");
    if (!baseName.empty()) {
        const auto base = store.model(baseName);
        if (!base)
            throw ConfigError(store.path().string() + ": no model named '" + baseName + "'");
        return *base;
    }
    for (const auto &m : all)
        if (!m.parentId)
            return m;
    return all.front();
}

// One model's row: its run (role, tokens, time), parameter counts, held-out scores per language and
// probe scores; a probe seen for the first time joins r.probes.
ReportModel reportModel(const ProjectStore &store, const ModelRecord &m, const std::vector<RunRecord> &runs,
                        ForgettingReport &r)
{
    ReportModel x;
    x.id = m.id;
    x.name = m.name;
    x.kind = m.kind;
    x.parentId = m.parentId;
    x.parameters = m.parameters;
    for (const auto &run : runs)
        if (run.modelOut == m.id) {
            x.runKind = run.kind;
            x.tokens = int64_t(lastMetric(store, run.id, "tokens"));
            x.seconds = lastMetric(store, run.id, "seconds");
        }
    const char *role = roleOf(x.runKind, x.kind);
    x.role = role ? role : x.runKind;
    // Older projects stored the dense config only; the folder's config.json has the MoE layout.
    std::string config = m.config;
    if (config.find("\"polymoe\"") == std::string::npos) {
        std::ifstream in(store.modelPath(m) / "config.json");
        if (in)
            config.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
    countFromConfig(x, config);
    for (const auto &e : store.evaluations(m.id))
        if (e.split.starts_with(kProbeSplitPrefix)) {
            ReportProbeScore score;
            score.perplexity = e.perplexity;
            score.low = e.perplexityLow;
            score.high = e.perplexityHigh;
            if (e.characters > 0)
                score.bitsPerCharacter = bitsPerUnit(e.loss, e.tokens, e.characters);
            if (e.bytes > 0)
                score.bitsPerByte = bitsPerUnit(e.loss, e.tokens, e.bytes);
            const std::string name = e.split.substr(kProbeSplitPrefix.size());
            x.probes[name] = score; // the latest evaluation wins (evaluations come oldest first)
            if (std::none_of(r.probes.begin(), r.probes.end(), [&](const ReportProbe &q) { return q.name == name; }))
                r.probes.push_back({name, e.language});
        } else if (e.split == "heldout" || e.split.empty()) {
            x.perplexity[e.language] = e.perplexity;
            if (std::isfinite(e.perplexityLow) && std::isfinite(e.perplexityHigh))
                x.perplexityInterval[e.language] = {e.perplexityLow, e.perplexityHigh};
            if (e.characters > 0)
                x.bitsPerCharacter[e.language] = bitsPerUnit(e.loss, e.tokens, e.characters);
            if (e.bytes > 0)
                x.bitsPerByte[e.language] = bitsPerUnit(e.loss, e.tokens, e.bytes);
        }
    return x;
}

// Per group (old, new): the geometric mean of the ratios to the base, NaN where a language lacks one.
void addGroupMeans(ForgettingReport &r)
{
    for (const auto &x : r.models)
        for (const char *g : {"old", "new"}) {
            double logSum = 0;
            int n = 0;
            bool missing = false;
            for (const auto &l : r.languages) {
                if (toString(l.group) != g)
                    continue;
                const double q = r.ratio(x.name, l.code);
                if (std::isfinite(q) && q > 0)
                    logSum += std::log(q), ++n;
                else
                    missing = true;
            }
            if (n > 0 || missing)
                r.groups.push_back({x.name, g, (n > 0 && !missing) ? std::exp(logSum / n) : std::nan("")});
        }
}

size_t indexOfModel(const ForgettingReport &r, const std::string &n)
{
    for (size_t i = 0; i < r.models.size(); ++i)
        if (r.models[i].name == n)
            return i;
    return r.models.size();
}

size_t indexOfLanguage(const ForgettingReport &r, const std::string &c)
{
    for (size_t i = 0; i < r.languages.size(); ++i)
        if (r.languages[i].code == c)
            return i;
    return r.languages.size();
}

// Routing of the expanded models: the statistics recorded for the saved model (section 8), by model
// (report order), language (old first), layer.
void addRouting(const ProjectStore &store, const std::vector<RunRecord> &runs, ForgettingReport &r)
{
    for (const auto &x : r.models) {
        if (x.experts.empty())
            continue;
        for (const auto &run : runs) {
            if (run.modelOut != x.id)
                continue;
            for (const auto &s : store.routerStats(run.id)) {
                if (s.modelId != x.id || s.expert != 0)
                    continue;
                const auto lang = store.language(s.language);
                r.routing.push_back({x.name, s.language, lang ? toString(lang->group) : "", s.layer, s.top1Share,
                                     s.entropy});
            }
        }
    }
    std::stable_sort(r.routing.begin(), r.routing.end(), [&](const ReportRouting &a, const ReportRouting &b) {
        return std::tuple(indexOfModel(r, a.model), indexOfLanguage(r, a.language), a.layer) <
               std::tuple(indexOfModel(r, b.model), indexOfLanguage(r, b.language), b.layer);
    });
}

// Generation samples: grouped by prompt (in the order first recorded), models in report order.
void addSamples(const ProjectStore &store, ForgettingReport &r)
{
    std::vector<std::pair<std::string, std::string>> prompts; // (language, prompt)
    for (const auto &x : r.models)
        for (auto &s : store.samples(x.id)) {
            if (std::find(prompts.begin(), prompts.end(), std::pair(s.language, s.prompt)) == prompts.end())
                prompts.emplace_back(s.language, s.prompt);
            r.samples.push_back({x.name, s.language, s.prompt, s.continuation});
        }
    std::stable_sort(r.samples.begin(), r.samples.end(), [&](const ReportSample &a, const ReportSample &b) {
        const auto pa = std::find(prompts.begin(), prompts.end(), std::pair(a.language, a.prompt)) - prompts.begin();
        const auto pb = std::find(prompts.begin(), prompts.end(), std::pair(b.language, b.prompt)) - prompts.begin();
        return std::tuple(indexOfLanguage(r, a.language), pa, indexOfModel(r, a.model)) <
               std::tuple(indexOfLanguage(r, b.language), pb, indexOfModel(r, b.model));
    });
}

} // namespace

ForgettingReport buildForgettingReport(const ProjectStore &store, const std::string &baseName)
{
    const auto all = store.models();
    const ModelRecord base = reportBase(store, all, baseName);
    ForgettingReport r;
    r.project = store.path().string();
    r.base = base.name;
    for (const auto &l : store.languages())
        if (l.group == LanguageGroup::Old)
            r.languages.push_back(l);
    for (const auto &l : store.languages())
        if (l.group == LanguageGroup::New)
            r.languages.push_back(l);

    // The base and its descendants, in creation order (ids grow).
    std::set<int64_t> family{base.id};
    const auto runs = store.runs();
    for (const auto &m : all)
        if (m.id == base.id || (m.parentId && family.count(*m.parentId))) {
            family.insert(m.id);
            r.models.push_back(reportModel(store, m, runs, r));
        }
    if (r.models.front().perplexity.empty())
        throw ConfigError(store.path().string() + ": base model '" + base.name +
                          "' has no held-out evaluation; run 'polymoe eval --model " + base.name + "'");
    for (auto &x : r.models)
        x.addedParameters = x.parameters - r.models.front().parameters;
    addGroupMeans(r);
    addRouting(store, runs, r);
    std::sort(r.probes.begin(), r.probes.end(), [](const ReportProbe &a, const ReportProbe &b) { return a.name < b.name; });
    addSamples(store, r);
    return r;
}

namespace {

// A model's row label: its name, and its role where that differs ("stage2 (MoE-LPR)").
std::string reportLabel(const ReportModel &m)
{
    return m.role == m.name ? m.name : m.name + " (" + m.role + ")";
}

// The width of the model column: the longest label, at least 30.
int labelWidth(const ForgettingReport &r)
{
    int width = 30;
    for (const auto &m : r.models)
        width = std::max(width, int(reportLabel(m).size()) + 1);
    return width;
}

// The table: held-out perplexity per language, and each model's ratio to the base.
void writeTable(std::ostream &os, const ForgettingReport &r)
{
    const int width = labelWidth(r);
    char buf[256];
    std::snprintf(buf, sizeof buf, "%-*s", width, "model");
    os << buf;
    for (const auto &l : r.languages) {
        std::snprintf(buf, sizeof buf, " %17s", (l.code + " (" + toString(l.group) + ")").c_str());
        os << buf;
    }
    os << "\n";
    for (const auto &m : r.models) {
        std::snprintf(buf, sizeof buf, "%-*s", width, reportLabel(m).c_str());
        os << buf;
        for (const auto &l : r.languages) {
            auto it = m.perplexity.find(l.code);
            std::string cell = "-";
            if (it != m.perplexity.end()) {
                cell = fmt("%.1f", it->second);
                if (m.name != r.base)
                    cell += " (x" + fmt(r.ratio(m.name, l.code) < 10 ? "%.2f" : "%.1f", r.ratio(m.name, l.code)) + ")";
            }
            std::snprintf(buf, sizeof buf, " %17s", cell.c_str());
            os << buf;
        }
        os << "\n";
    }
}

// The 95% document-bootstrap intervals, for the models that have them.
void writeIntervals(std::ostream &os, const ForgettingReport &r)
{
    char buf[256];
    bool anyInterval = false;
    for (const auto &m : r.models)
        anyInterval = anyInterval || !m.perplexityInterval.empty();
    if (anyInterval) {
        os << "\n95% intervals of the perplexities over the held-out documents (document bootstrap):\n";
        for (const auto &m : r.models) {
            if (m.perplexityInterval.empty())
                continue;
            std::snprintf(buf, sizeof buf, "  %-22s", m.name.c_str());
            os << buf;
            for (const auto &l : r.languages)
                if (auto it = m.perplexityInterval.find(l.code); it != m.perplexityInterval.end())
                    os << "  " << l.code << " " << fmt(it->second.first < 100 ? "%.1f" : "%.0f", it->second.first) << "-"
                       << fmt(it->second.second < 100 ? "%.1f" : "%.0f", it->second.second);
            os << "\n";
        }
    }
}

// Bits per character (and per UTF-8 byte): the measure that compares languages with each other.
void writeBitsPerCharacter(std::ostream &os, const ForgettingReport &r)
{
    char buf[256];
    bool anyBits = false;
    for (const auto &m : r.models)
        anyBits = anyBits || !m.bitsPerCharacter.empty();
    if (anyBits) {
        os << "\nbits per character (per UTF-8 byte) of the same held-out text; these, not per-token perplexity,\n"
              "compare languages with each other:\n";
        std::snprintf(buf, sizeof buf, "%-30s", "model");
        os << buf;
        for (const auto &l : r.languages) {
            std::snprintf(buf, sizeof buf, " %13s", l.code.c_str());
            os << buf;
        }
        os << "\n";
        for (const auto &m : r.models) {
            if (m.bitsPerCharacter.empty())
                continue;
            std::snprintf(buf, sizeof buf, "%-30s", m.name.c_str());
            os << buf;
            for (const auto &l : r.languages) {
                std::string cell = "-";
                if (auto c = m.bitsPerCharacter.find(l.code); c != m.bitsPerCharacter.end()) {
                    cell = fmt("%.3f", c->second);
                    if (auto b = m.bitsPerByte.find(l.code); b != m.bitsPerByte.end())
                        cell += " (" + fmt("%.3f", b->second) + ")";
                }
                std::snprintf(buf, sizeof buf, " %13s", cell.c_str());
                os << buf;
            }
            os << "\n";
        }
    }
}

// Per group, the geometric mean of the ratios to the base.
void writeGroupMeans(std::ostream &os, const ForgettingReport &r)
{
    char buf[256];
    os << "\nper group, geometric mean of the ratios to the base:\n";
    for (const auto &m : r.models) {
        if (m.name == r.base)
            continue;
        std::snprintf(buf, sizeof buf, "  %-22s", m.name.c_str());
        os << buf;
        for (const auto &g : r.groups)
            if (g.model == m.name) {
                const double pct = (g.ratio - 1) * 100;
                os << "  " << g.group << " x" << fmt("%.3f", g.ratio) << " ("
                   << (std::isfinite(pct) ? fmt("%+.1f%%", pct) : std::string("n/a")) << ")";
            }
        os << "\n";
    }
}

// The out-of-domain probes: perplexity, ratio to the base and bits per character per model.
void writeProbes(std::ostream &os, const ForgettingReport &r)
{
    char buf[256];
    const int width = labelWidth(r);
    for (const auto &q : r.probes) {
        os << "\nout-of-domain probe '" << q.name << "' (" << q.language
           << " text outside the corpus, never trained on): perplexity (ratio to the base), bits per character\n";
        for (const auto &m : r.models) {
            auto it = m.probes.find(q.name);
            if (it == m.probes.end())
                continue;
            std::string cell = fmt("%.2f", it->second.perplexity);
            if (m.name != r.base)
                cell += " (x" + fmt("%.3f", r.probeRatio(m.name, q.name)) + ")";
            std::snprintf(buf, sizeof buf, "  %-*s %-20s", width, reportLabel(m).c_str(), cell.c_str());
            os << buf;
            if (std::isfinite(it->second.bitsPerCharacter))
                os << " " << fmt("%.3f", it->second.bitsPerCharacter) << " bits/char";
            os << "\n";
        }
    }
}

// Parameter counts (total, added, active per token), the expert layout and the training cost.
void writeParameters(std::ostream &os, const ForgettingReport &r)
{
    char buf[256];
    os << "\nparameters (weights):\n";
    for (const auto &m : r.models) {
        std::snprintf(buf, sizeof buf, "  %-22s total %11lld  added %10lld  active per token %11lld", m.name.c_str(),
                      (long long)m.parameters, (long long)m.addedParameters, (long long)m.activeParametersPerToken);
        os << buf;
        if (!m.experts.empty()) {
            os << "  experts";
            for (size_t i = 0; i < m.experts.size(); ++i)
                os << (i ? "," : " ") << m.experts[i];
        }
        if (m.tokens > 0)
            os << "  trained on " << m.tokens << " tokens in " << fmt("%.0f", m.seconds) << " s";
        os << "\n";
    }
}

// Routing: the share of tokens whose top-1 is expert 0, per model, language and MoE layer.
void writeRouting(std::ostream &os, const ForgettingReport &r)
{
    char buf[256];
    if (!r.routing.empty()) {
        os << "\nshare of tokens whose top-1 is expert 0 (the frozen original), per MoE layer:\n";
        std::string model, lang;
        for (const auto &x : r.routing) {
            if (x.model != model) {
                model = x.model;
                lang.clear();
                os << (&x == &r.routing.front() ? "" : "\n") << "  " << model;
                for (const auto &y : r.routing)
                    if (y.model == model && y.language == x.language)
                        os << "  L" << y.layer << (y.layer < 10 ? "  " : " ");
            }
            if (x.language != lang) {
                lang = x.language;
                std::snprintf(buf, sizeof buf, "\n    %-*s", int(model.size()) - 2, (lang + " (" + x.group + ")").c_str());
                os << buf;
            }
            os << "  " << fmt("%.2f", x.expert0Top1);
        }
        os << "\n";
    }
}

// Generation samples, grouped by prompt.
void writeSamples(std::ostream &os, const ForgettingReport &r)
{
    char buf[256];
    if (!r.samples.empty()) {
        os << "\ngeneration samples (greedy continuations of the same prompts):\n";
        std::string lang, prompt;
        for (const auto &x : r.samples) {
            if (x.language != lang || x.prompt != prompt) {
                lang = x.language;
                prompt = x.prompt;
                os << "\n  [" << lang << "] " << prompt << "\n";
            }
            std::string text = x.continuation;
            for (char &c : text)
                if (c == '\n' || c == '\r' || c == '\t')
                    c = ' ';
            std::snprintf(buf, sizeof buf, "    %-26s ", (x.model + ":").c_str());
            os << buf << text << "\n";
        }
    }
}

} // namespace

std::string forgettingReportText(const ForgettingReport &r)
{
    std::ostringstream os;
    os << "forgetting report: " << r.project << "\n";
    os << "held-out perplexity per language, and its ratio to the base '" << r.base
       << "' (old: > 1 is forgetting; new: < 1 is gain)\n\n";
    for (const auto section : {writeTable, writeIntervals, writeBitsPerCharacter, writeGroupMeans, writeProbes,
                               writeParameters, writeRouting, writeSamples})
        section(os, r);
    return os.str();
}

std::string forgettingReportJson(const ForgettingReport &r)
{
    nlohmann::json j = {{"project", r.project}, {"base", r.base}};
    j["languages"] = nlohmann::json::array();
    for (const auto &l : r.languages)
        j["languages"].push_back({{"code", l.code}, {"name", l.name}, {"group", toString(l.group)}, {"wave", l.wave}});
    j["models"] = nlohmann::json::array();
    for (const auto &m : r.models) {
        nlohmann::json ppl = nlohmann::json::object(), ratio = nlohmann::json::object(),
                       interval = nlohmann::json::object();
        for (const auto &[code, v] : m.perplexity) {
            ppl[code] = v;
            ratio[code] = num(r.ratio(m.name, code));
        }
        for (const auto &[code, ci] : m.perplexityInterval)
            interval[code] = {ci.first, ci.second};
        nlohmann::json bpc = nlohmann::json::object(), bpb = nlohmann::json::object();
        for (const auto &[code, v] : m.bitsPerCharacter)
            bpc[code] = num(v);
        for (const auto &[code, v] : m.bitsPerByte)
            bpb[code] = num(v);
        nlohmann::json probes = nlohmann::json::object();
        for (const auto &[name, q] : m.probes)
            probes[name] = {{"perplexity", q.perplexity}, {"perplexity_interval", {num(q.low), num(q.high)}},
                            {"ratio_to_base", num(r.probeRatio(m.name, name))},
                            {"bits_per_character", num(q.bitsPerCharacter)}, {"bits_per_byte", num(q.bitsPerByte)}};
        nlohmann::json groups = nlohmann::json::object();
        for (const auto &g : r.groups)
            if (g.model == m.name)
                groups[g.group] = num(g.ratio);
        j["models"].push_back({{"id", m.id}, {"name", m.name}, {"kind", m.kind}, {"run_kind", m.runKind},
                               {"role", m.role}, {"parameters", m.parameters}, {"added_parameters", m.addedParameters},
                               {"active_parameters_per_token", m.activeParametersPerToken},
                               {"experts_per_layer", m.experts}, {"top_k", m.topK}, {"tokens", m.tokens},
                               {"seconds", m.seconds}, {"perplexity", ppl}, {"perplexity_interval", interval},
                               {"ratio_to_base", ratio}, {"bits_per_character", bpc}, {"bits_per_byte", bpb},
                               {"group_ratio", groups}, {"probes", probes}});
    }
    j["probes"] = nlohmann::json::array();
    for (const auto &q : r.probes)
        j["probes"].push_back({{"name", q.name}, {"language", q.language}});
    j["routing"] = nlohmann::json::array();
    for (const auto &x : r.routing)
        j["routing"].push_back({{"model", x.model}, {"language", x.language}, {"group", x.group}, {"layer", x.layer},
                                {"expert0_top1", x.expert0Top1}, {"entropy", x.entropy}});
    j["samples"] = nlohmann::json::array();
    for (const auto &x : r.samples)
        j["samples"].push_back({{"model", x.model}, {"language", x.language}, {"prompt", x.prompt},
                                {"continuation", x.continuation}});
    return j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
}

} // namespace polymoe
