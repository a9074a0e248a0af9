// Post-processors of tokenizer.json for a single sequence: TemplateProcessing, RobertaProcessing,
// BertProcessing, ByteLevel (nothing to do on ids) and Sequence.
#include "hf_tokenizer_internal.h"

#include "polymoe/error.h"

#include <map>

namespace polymoe::detail::hf {

namespace {

constexpr int64_t kMaxId = (int64_t(1) << 24) - 1;

// The single-sequence template: special ids, the sequence ($A) marked by an empty entry.
class Template final : public PostProcessor {
public:
    explicit Template(const Node &node)
    {
        const Node specials = node.has("special_tokens") ? node.at("special_tokens") : Node(kEmpty, "", node.file());
        std::map<std::string, std::vector<int32_t>> byName;
        if (specials.value().is_object()) {
            for (auto it = specials.value().begin(); it != specials.value().end(); ++it) {
                const Node entry(it.value(), specials.path() + "[" + shortQuote(it.key()) + "]", node.file());
                const Node ids = entry.at("ids");
                ids.expectArray();
                std::vector<int32_t> list;
                for (size_t i = 0; i < ids.size(); ++i)
                    list.push_back(int32_t(ids[i].asInteger(0, kMaxId)));
                byName[it.key()] = std::move(list);
            }
        }
        const Node single = node.at("single");
        single.expectArray();
        for (size_t i = 0; i < single.size(); ++i) {
            const Node piece = single[i];
            piece.expectObject();
            if (piece.has("SpecialToken")) {
                const std::string id = piece.at("SpecialToken").str("id");
                const auto it = byName.find(id);
                if (it == byName.end())
                    piece.fail("special token " + shortQuote(id) + " is not in special_tokens");
                m_items.push_back({false, it->second});
                m_added += it->second.size();
            } else if (piece.has("Sequence")) {
                const std::string id = piece.at("Sequence").str("id");
                if (id != "A")
                    piece.fail("the single template may only hold sequence A");
                m_items.push_back({true, {}});
            } else {
                piece.fail("expected \"SpecialToken\" or \"Sequence\"");
            }
        }
    }
    size_t addedTokens() const override { return m_added; }
    void process(std::vector<int32_t> &ids) const override
    {
        std::vector<int32_t> out;
        out.reserve(ids.size() + m_added);
        for (const Item &item : m_items) {
            if (item.sequence)
                out.insert(out.end(), ids.begin(), ids.end());
            else
                out.insert(out.end(), item.ids.begin(), item.ids.end());
        }
        ids.swap(out);
    }
    void specialsAround(std::vector<int32_t> &before, std::vector<int32_t> &after) const override
    {
        bool seenSequence = false;
        for (const Item &item : m_items) {
            if (item.sequence)
                seenSequence = true;
            else
                (seenSequence ? after : before).insert((seenSequence ? after : before).end(), item.ids.begin(), item.ids.end());
        }
    }

private:
    struct Item {
        bool sequence;
        std::vector<int32_t> ids;
    };
    static inline const Json kEmpty = Json::object();
    std::vector<Item> m_items;
    size_t m_added = 0;
};

// [cls] A [sep], as RobertaProcessing and BertProcessing do for one sequence.
class ClsSep final : public PostProcessor {
public:
    explicit ClsSep(const Node &node) : m_cls(readPair(node.at("cls"))), m_sep(readPair(node.at("sep"))) {}
    size_t addedTokens() const override { return 2; }
    void process(std::vector<int32_t> &ids) const override
    {
        ids.insert(ids.begin(), m_cls);
        ids.push_back(m_sep);
    }
    void specialsAround(std::vector<int32_t> &before, std::vector<int32_t> &after) const override
    {
        before.push_back(m_cls);
        after.push_back(m_sep);
    }

private:
    static int32_t readPair(const Node &pair)
    {
        pair.expectArray();
        if (pair.size() != 2)
            pair.fail("expected [token, id]");
        pair[0].asString();
        return int32_t(pair[1].asInteger(0, kMaxId));
    }
    int32_t m_cls, m_sep;
};

class Nothing final : public PostProcessor {
public:
    size_t addedTokens() const override { return 0; }
    void process(std::vector<int32_t> &) const override {}
    void specialsAround(std::vector<int32_t> &, std::vector<int32_t> &) const override {}
};

class SequenceProcessor final : public PostProcessor {
public:
    explicit SequenceProcessor(std::vector<std::unique_ptr<PostProcessor>> steps) : m_steps(std::move(steps)) {}
    size_t addedTokens() const override
    {
        size_t n = 0;
        for (const auto &s : m_steps)
            n += s->addedTokens();
        return n;
    }
    void process(std::vector<int32_t> &ids) const override
    {
        for (const auto &s : m_steps)
            s->process(ids);
    }
    void specialsAround(std::vector<int32_t> &before, std::vector<int32_t> &after) const override
    {
        for (const auto &s : m_steps) {
            std::vector<int32_t> b, a;
            s->specialsAround(b, a);
            before.insert(before.begin(), b.begin(), b.end());
            after.insert(after.end(), a.begin(), a.end());
        }
    }

private:
    std::vector<std::unique_ptr<PostProcessor>> m_steps;
};

} // namespace

std::unique_ptr<PostProcessor> makePostProcessor(const Node &node)
{
    const std::string type = node.type();
    if (type == "TemplateProcessing")
        return std::make_unique<Template>(node);
    if (type == "RobertaProcessing" || type == "BertProcessing")
        return std::make_unique<ClsSep>(node);
    if (type == "ByteLevel")
        return std::make_unique<Nothing>();
    if (type == "Sequence") {
        const Node list = node.at("processors");
        list.expectArray();
        std::vector<std::unique_ptr<PostProcessor>> steps;
        for (size_t i = 0; i < list.size(); ++i)
            steps.push_back(makePostProcessor(list[i]));
        return std::make_unique<SequenceProcessor>(std::move(steps));
    }
    node.unsupported("type " + shortQuote(type) + " is not supported");
}

} // namespace polymoe::detail::hf
