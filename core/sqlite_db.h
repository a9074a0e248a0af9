// A thin RAII layer over SQLite's C API for core's stores: one Database per connection, prepared
// Statements with typed binds and columns. Errors become polymoe::IoError naming the file.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

struct sqlite3;
struct sqlite3_stmt;

namespace polymoe::detail {

class Database;

class Statement {
public:
    Statement(Database &db, std::string_view sql);
    ~Statement();
    Statement(Statement &&other) noexcept;
    Statement(const Statement &) = delete;
    Statement &operator=(const Statement &) = delete;

    // Binds are 1-based like SQLite's; each returns *this so calls chain.
    Statement &bind(int index, int64_t value);
    Statement &bind(int index, int value) { return bind(index, int64_t(value)); }
    Statement &bind(int index, double value);
    Statement &bind(int index, std::string_view text);
    Statement &bind(int index, const char *text) { return bind(index, std::string_view(text)); }
    Statement &bind(int index, const std::string &text) { return bind(index, std::string_view(text)); }
    Statement &bindBlob(int index, const void *data, size_t size);
    Statement &bindNull(int index);
    template <typename T> Statement &bind(int index, const std::optional<T> &value)
    {
        return value ? bind(index, *value) : bindNull(index);
    }

    bool step();              // true while a row is available
    void run();               // steps once, expecting no row
    void reset();             // ready to run again with new binds

    int64_t int64(int col) const;
    double real(int col) const;
    std::string text(int col) const;
    std::string blob(int col) const;
    bool isNull(int col) const;

private:
    Database *m_db;
    sqlite3_stmt *m_stmt = nullptr;
};

class Database {
public:
    enum class Mode { ReadWrite, Create, ReadOnly };
    Database(const std::filesystem::path &path, Mode mode);
    ~Database();
    Database(const Database &) = delete;
    Database &operator=(const Database &) = delete;

    void exec(std::string_view sql);
    Statement prepare(std::string_view sql) { return Statement(*this, sql); }
    int64_t lastInsertId() const;
    int changes() const;
    int64_t queryInt(std::string_view sql);

    sqlite3 *handle() const { return m_db; }
    const std::filesystem::path &path() const { return m_path; }
    [[noreturn]] void fail(std::string_view what) const;

private:
    sqlite3 *m_db = nullptr;
    std::filesystem::path m_path;
};

// BEGIN IMMEDIATE ... COMMIT; rolls back in the destructor unless commit() ran.
class Transaction {
public:
    explicit Transaction(Database &db);
    ~Transaction();
    void commit();
    Transaction(const Transaction &) = delete;
    Transaction &operator=(const Transaction &) = delete;

private:
    Database &m_db;
    bool m_done = false;
};

} // namespace polymoe::detail
