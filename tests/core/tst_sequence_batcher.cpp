// The sequence batcher: deterministic batches from (streams, seed, step), language mixing by
// weight, document wrapping, and held-out sequences.
#include "polymoe/error.h"
#include "sequence_batcher.h"

#include <QtTest>

#include <map>

using namespace polymoe;

class TestSequenceBatcher : public QObject {
    Q_OBJECT

private:
    // A stream whose tokens encode (language, position) so sequences can be traced back.
    static LanguageStream stream(const std::string &lang, int base, int n, double w, bool isNew)
    {
        LanguageStream s;
        s.language = lang;
        s.weight = w;
        s.isNew = isNew;
        for (int i = 0; i < n; ++i)
            s.tokens.push_back(base + i);
        return s;
    }

private Q_SLOTS:
    void wrapsDocuments()
    {
        TokenShard sh;
        sh.language = "de";
        sh.vocabSize = 100;
        sh.addDocument({10, 11});
        sh.addDocument({12});
        auto s = makeStream(sh, true, 1.0, 1, 2);
        QCOMPARE(s.tokens, (std::vector<int32_t>{1, 10, 11, 2, 1, 12, 2}));
        QCOMPARE(s.documentEnds, (std::vector<int64_t>{4, 7}));
        auto noSpecial = makeStream(sh, true, 1.0, -1, -1);
        QCOMPARE(noSpecial.tokens, (std::vector<int32_t>{10, 11, 12}));
        QCOMPARE(noSpecial.documentEnds, (std::vector<int64_t>{2, 3}));
    }

    void sameStepSameBatch()
    {
        SequenceBatcher a({stream("en", 0, 5000, 1, false), stream("de", 100000, 3000, 1, true)}, 16, 7);
        SequenceBatcher b({stream("en", 0, 5000, 1, false), stream("de", 100000, 3000, 1, true)}, 16, 7);
        for (int64_t step : {0, 1, 5, 40}) {
            auto x = a.batch(step, 8), y = b.batch(step, 8);
            QCOMPARE(x.tokens, y.tokens);
            QCOMPARE(x.language, y.language);
        }
        SequenceBatcher c({stream("en", 0, 5000, 1, false), stream("de", 100000, 3000, 1, true)}, 16, 8);
        QVERIFY(a.batch(3, 8).tokens != c.batch(3, 8).tokens);
    }

    void sequencesAreContiguousAndTagged()
    {
        SequenceBatcher b({stream("en", 0, 5000, 1, false), stream("de", 100000, 3000, 1, true)}, 16, 3);
        auto batch = b.batch(2, 32);
        QCOMPARE(int(batch.tokens.size()), 32 * 17);
        for (int r = 0; r < 32; ++r) {
            const int64_t first = batch.tokens[size_t(r * 17)];
            // Each row is 17 consecutive tokens starting at a multiple of 16 in its stream.
            for (int t = 1; t < 17; ++t)
                QCOMPARE(batch.tokens[size_t(r * 17 + t)], first + t);
            const bool isDe = first >= 100000;
            QCOMPARE(batch.language[size_t(r)], isDe ? 1 : 0);
            QCOMPARE(bool(batch.isNew[size_t(r)]), isDe);
            QCOMPARE((first - (isDe ? 100000 : 0)) % 16, int64_t(0));
        }
    }

    void mixesByWeight()
    {
        SequenceBatcher b({stream("en", 0, 100000, 0.95, false), stream("de", 1000000, 100000, 0.05, true)}, 8, 11);
        int de = 0, total = 0;
        for (int64_t s = 0; s < 50; ++s) {
            auto batch = b.batch(s, 64);
            for (int l : batch.language) {
                de += l == 1;
                ++total;
            }
        }
        // Binomial(3200, 0.05): mean 160, sd ~12.3; 5 sd.
        QVERIFY2(de > 98 && de < 222, qPrintable(QString::number(de)));
        SequenceBatcher zero({stream("en", 0, 1000, 1, false), stream("de", 1000000, 1000, 0, true)}, 8, 1);
        for (int l : zero.batch(3, 64).language)
            QCOMPARE(l, 0);
    }

    void epochCoversEveryChunkOnce()
    {
        // One language of 10 chunks: 10 consecutive rows are a permutation of them.
        SequenceBatcher b({stream("en", 0, 161, 1, false)}, 16, 5);
        QCOMPARE(b.chunksOf(0), int64_t(10));
        std::map<int64_t, int> seen;
        for (int64_t s = 0; s < 5; ++s) {
            auto batch = b.batch(s, 2);
            for (int r = 0; r < 2; ++r)
                ++seen[batch.tokens[size_t(r * 17)] / 16];
        }
        QCOMPARE(int(seen.size()), 10);
        for (auto &[k, v] : seen)
            QCOMPARE(v, 1);
    }

    void errors()
    {
        QVERIFY_THROWS_EXCEPTION(ConfigError, SequenceBatcher({stream("en", 0, 10, 1, false)}, 16, 1));
        QVERIFY_THROWS_EXCEPTION(ConfigError, SequenceBatcher({stream("en", 0, 1000, 0, false)}, 16, 1));
        QVERIFY_THROWS_EXCEPTION(ConfigError, SequenceBatcher({stream("en", 0, 1000, -1, false)}, 16, 1));
    }

    void evaluationSequencesDoNotOverlap()
    {
        auto s = stream("de", 0, 100, 1, true);
        auto seqs = evaluationSequences(s, 16, 0);
        QCOMPARE(int(seqs.size()), 6); // 6 * 16 + 1 = 97 <= 100
        for (size_t i = 0; i < seqs.size(); ++i) {
            QCOMPARE(int(seqs[i].size()), 17);
            QCOMPARE(seqs[i][0], int64_t(i * 16));
        }
        QCOMPARE(int(evaluationSequences(s, 16, 32).size()), 2);
        auto shortStream = stream("de", 0, 5, 1, true);
        auto one = evaluationSequences(shortStream, 16, 0);
        QCOMPARE(int(one.size()), 1);
        QCOMPARE(int(one[0].size()), 5);
    }
};

QTEST_GUILESS_MAIN(TestSequenceBatcher)
#include "tst_sequence_batcher.moc"
