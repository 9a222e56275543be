// PostgreSQL backend of storage::database, on libpq.
//
// Every parameter and result travels in text format and parameter types are
// left to the server to infer, so the repositories' SQL runs unchanged:
// "1" is a valid bigint, boolean and numeric, and a numeric sum() or a
// boolean EXISTS reads back through getInt64 like SQLite's integers.
//
// Transaction control is pipelined: BEGIN, SAVEPOINT and RELEASE are held
// back and go out in one pipeline with the next statement (and its PREPARE
// on first use), ended by a Sync, so the writer's per-job savepoint costs no
// round trip of its own. Every call still ends with all its results read
// and the connection out of pipeline mode, so errors stay synchronous: a
// failed statement throws before anything after it was sent.
#include "chatstream/storage/database.hpp"

#include "detail/connection.hpp"

#include <libpq-fe.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <unordered_map>
#include <utility>
#include <vector>

namespace chatstream::storage::detail
{

std::pair<std::string, int> to_postgres_placeholders(std::string_view sql)
{
    std::string out;
    out.reserve(sql.size() + 16);
    int highest = 0; // SQLite: a bare `?` is one more than the largest index so far
    for (std::size_t i = 0; i < sql.size(); ++i)
    {
        char const c = sql[i];
        if (c == '\'' || c == '"')
        {
            auto const end = sql.find(c, i + 1); // '' escapes are two adjacent literals
            auto const stop = end == std::string_view::npos ? sql.size() : end + 1;
            out.append(sql.substr(i, stop - i));
            i = stop - 1;
        }
        else if (c == '-' && i + 1 < sql.size() && sql[i + 1] == '-')
        {
            auto const end = sql.find('\n', i);
            auto const stop = end == std::string_view::npos ? sql.size() : end;
            out.append(sql.substr(i, stop - i));
            i = stop - 1;
        }
        else if (c == '?')
        {
            std::size_t j = i + 1;
            while (j < sql.size() && sql[j] >= '0' && sql[j] <= '9')
                ++j;
            int index = 0;
            if (j > i + 1)
                std::from_chars(sql.data() + i + 1, sql.data() + j, index);
            else
                index = highest + 1;
            highest = std::max(highest, index);
            out += '$';
            out += std::to_string(index);
            i = j - 1;
        }
        else
            out += c;
    }
    return {std::move(out), highest};
}

namespace
{

errc from_sqlstate(char const* state)
{
    if (!state)
        return errc::io; // no SQLSTATE: the connection itself failed
    std::string_view s(state);
    if (s.starts_with("23"))
        return errc::constraint;
    if (s == "55P03" || s == "40001" || s == "40P01" || s == "57014")
        return errc::busy;
    if (s == "53100" || s.starts_with("53"))
        return errc::full;
    if (s.starts_with("08") || s.starts_with("57P") || s.starts_with("58"))
        return errc::io;
    if (s.starts_with("22"))
        return errc::invalid_argument;
    return errc::internal;
}

[[noreturn]] void throw_result(PGconn* conn, PGresult* r, std::string_view what)
{
    char const* state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
    std::string message = r ? PQresultErrorMessage(r) : PQerrorMessage(conn);
    while (!message.empty() && (message.back() == '\n' || message.back() == ' '))
        message.pop_back();
    std::string const sqlstate = state ? state : "";
    auto const code = from_sqlstate(state);
    if (r)
        PQclear(r);
    // `what` is often the statement: enough of it to recognise, not a
    // 500-row INSERT in every log line.
    constexpr std::size_t shown = 240;
    std::string context(what.substr(0, shown));
    if (what.size() > shown)
        context += "...";
    throw database_error(code, context + ": " + message, sqlstate);
}

struct result_deleter
{
    void operator()(PGresult* r) const noexcept { PQclear(r); }
};
using result_ptr = std::unique_ptr<PGresult, result_deleter>;

class pg_connection;

class pg_statement final : public statement
{
public:
    pg_statement(pg_connection& conn, std::string name, std::string sql, int params)
        : conn_(conn), name_(std::move(name)), sql_(std::move(sql)), values_(params),
          null_(params, true)
    {
    }

    bool executeStep() override
    {
        if (!result_)
        {
            run();
            row_ = 0;
        }
        else
            ++row_;
        return row_ < PQntuples(result_.get());
    }

    int exec() override
    {
        run();
        char const* n = PQcmdTuples(result_.get());
        int changed = 0;
        if (n && *n)
            std::from_chars(n, n + std::strlen(n), changed);
        result_.reset();
        return changed;
    }

    void reset() override { result_.reset(); }

    void clearBindings() override
    {
        for (std::size_t i = 0; i < null_.size(); ++i)
            null_[i] = true;
    }

    void recycle()
    {
        result_.reset();
        clearBindings();
    }

    void unprepare() noexcept { prepared_ = false; }

    int getColumnCount() const override { return result_ ? PQnfields(result_.get()) : 0; }

    bool column_is_null(int i) const override { return PQgetisnull(result_.get(), row_, i) != 0; }

    std::int64_t column_int64(int i) const override
    {
        auto const v = column_text(i);
        if (v.empty())
            return 0;
        if (v == "t")
            return 1; // boolean
        if (v == "f")
            return 0;
        std::int64_t out = 0;
        auto const [end, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
        // numeric (e.g. sum() of bigint) may carry a fraction: truncate like SQLite's cast
        if (ec != std::errc() || end != v.data() + v.size())
            out = static_cast<std::int64_t>(column_double(i));
        return out;
    }

    double column_double(int i) const override
    {
        auto const v = column_text(i);
        if (v.empty())
            return 0;
        return std::strtod(v.data(), nullptr);
    }

    std::string_view column_text(int i) const override
    {
        if (PQgetisnull(result_.get(), row_, i))
            return std::string_view(""); // NULL reads as empty text, never a null pointer
        return {PQgetvalue(result_.get(), row_, i),
                static_cast<std::size_t>(PQgetlength(result_.get(), row_, i))};
    }

protected:
    void bind_int64(int i, std::int64_t v) override { set(i, std::to_string(v)); }
    void bind_double(int i, double v) override
    {
        char buf[64];
        auto const [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
        set(i, std::string(buf, end));
    }
    void bind_text(int i, std::string_view v, bool) override { set(i, std::string(v)); }
    void bind_null(int i) override { slot(i), null_[static_cast<std::size_t>(i - 1)] = true; }

private:
    std::size_t slot(int i)
    {
        if (i < 1 || static_cast<std::size_t>(i) > values_.size())
            throw database_error(errc::internal,
                                 "bind index " + std::to_string(i) + " out of range for: " + sql_);
        return static_cast<std::size_t>(i - 1);
    }
    void set(int i, std::string v)
    {
        auto const k = slot(i);
        values_[k] = std::move(v);
        null_[k] = false;
    }

    void run();
    void run_pipelined(PGconn* c, std::vector<std::string> deferred);

    pg_connection& conn_;
    std::string name_;
    std::string sql_;
    std::vector<std::string> values_;
    std::vector<bool> null_;
    std::vector<char const*> pointers_;
    result_ptr result_;
    int row_ = 0;
    bool prepared_ = false;
};

class pg_connection final : public connection
{
public:
    pg_connection(std::string const& uri, open_mode mode, database_options const& options)
        : uri_(uri)
    {
        conn_ = PQconnectdb(uri.c_str());
        if (PQstatus(conn_) != CONNECTION_OK)
        {
            std::string message = PQerrorMessage(conn_);
            PQfinish(conn_);
            conn_ = nullptr;
            while (!message.empty() && message.back() == '\n')
                message.pop_back();
            throw database_error(errc::io, "cannot connect to PostgreSQL: " + message);
        }
        // "relation already exists, skipping" and friends are not ours to print.
        PQsetNoticeProcessor(
            conn_, [](void*, char const*) {}, nullptr);
        session_setup_ = "SET client_min_messages = warning; SET lock_timeout = " +
                         std::to_string(options.busy_timeout_ms) + ";";
        if (options.sync == sync_mode::off)
            session_setup_ += " SET synchronous_commit = off;";
        if (mode == open_mode::read_only)
            session_setup_ += " SET default_transaction_read_only = on;";
        exec(session_setup_);
    }

    ~pg_connection() override
    {
        statements_.clear();
        if (conn_)
            PQfinish(conn_);
    }

    PGconn* handle() noexcept { return conn_; }

    statement& prepare(std::string const& sql) override
    {
        reconnect_if_broken();
        auto it = statements_.find(sql);
        if (it == statements_.end())
        {
            auto [translated, params] = to_postgres_placeholders(sql);
            auto stmt = std::make_unique<pg_statement>(*this, "s" + std::to_string(++serial_),
                                                       std::move(translated), params);
            return *statements_.emplace(sql, std::move(stmt)).first->second;
        }
        it->second->recycle();
        return *it->second;
    }

    void exec(std::string const& sql) override
    {
        reconnect_if_broken();
        check_transaction_alive();
        result_ptr r(PQexec(conn_, with_deferred(sql).c_str()));
        auto const status = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
        if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK)
            throw_result(conn_, r.release(), "PostgreSQL");
    }

    bool try_exec(std::string const& sql) noexcept override
    {
        if (transaction_lost_)
            return false;
        result_ptr r(PQexec(conn_, with_deferred(sql).c_str()));
        auto const status = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
        return status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK;
    }

    // Not cached: another node (or a migration on it) may change the schema
    // at any time, and the catalog lookup is an index probe.
    bool has_table(std::string const& table) override
    {
        auto& q = prepare("SELECT 1 FROM pg_catalog.pg_tables WHERE schemaname = current_schema() "
                          "AND tablename = ?");
        q.bind(1, table);
        bool const found = q.executeStep();
        q.reset();
        return found;
    }

    bool has_column(std::string const& table, std::string const& column) override
    {
        auto& q = prepare("SELECT 1 FROM pg_catalog.pg_attribute WHERE attrelid = to_regclass(?1) "
                          "AND attname = ?2 AND attnum > 0 AND NOT attisdropped");
        q.bind(1, table);
        q.bind(2, column);
        bool const found = q.executeStep();
        q.reset();
        return found;
    }

    //--------------------------------------------------------------------------
    // Transaction control: deferred until the next round trip.

    void begin(bool) override
    {
        reconnect_if_broken();
        deferred_.push_back("BEGIN");
        in_transaction_ = true;
    }

    void commit() override
    {
        check_transaction_alive();
        // A transaction that never reached the server has nothing to commit.
        if (deferred_.size() == 1 && deferred_.front() == "BEGIN")
        {
            deferred_.clear();
            in_transaction_ = false;
            return;
        }
        in_transaction_ = false;
        result_ptr r(PQexec(conn_, with_deferred("COMMIT").c_str()));
        auto const status = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
        if (status != PGRES_COMMAND_OK)
            throw_result(conn_, r.release(), "COMMIT");
        // COMMIT of a transaction in the failed state succeeds with the tag
        // ROLLBACK: nothing was made durable, so it is a failure here.
        if (std::string_view(PQcmdStatus(r.get())) != "COMMIT")
            throw database_error(errc::internal,
                                 "COMMIT: the transaction had failed and was rolled back");
    }

    bool rollback() noexcept override
    {
        bool const begun =
            std::find(deferred_.begin(), deferred_.end(), "BEGIN") == deferred_.end();
        deferred_.clear();
        in_transaction_ = false;
        if (transaction_lost_)
        {
            transaction_lost_ = false; // the server already rolled it back
            return true;
        }
        return !begun || try_exec("ROLLBACK");
    }

    void savepoint(std::string const& name) override
    {
        check_transaction_alive();
        deferred_.push_back("SAVEPOINT " + name);
    }

    void release(std::string const& name) override
    {
        check_transaction_alive();
        // A savepoint that never reached the server: nothing happened under it.
        if (!deferred_.empty() && deferred_.back() == "SAVEPOINT " + name)
        {
            deferred_.pop_back();
            return;
        }
        // In a failed transaction RELEASE fails; run it now so the failure
        // belongs to this job, not to whichever statement comes next.
        if (PQtransactionStatus(conn_) == PQTRANS_INERROR)
        {
            exec("RELEASE SAVEPOINT " + name);
            return;
        }
        deferred_.push_back("RELEASE SAVEPOINT " + name);
    }

    bool rollback_to(std::string const& name) noexcept override
    {
        if (!deferred_.empty() && deferred_.back() == "SAVEPOINT " + name)
        {
            deferred_.pop_back();
            return true;
        }
        // One round trip; RELEASE runs only if ROLLBACK TO succeeded.
        return try_exec("ROLLBACK TO SAVEPOINT " + name + "; RELEASE SAVEPOINT " + name);
    }

    /// Takes the held-back commands for a statement's pipeline.
    std::vector<std::string> take_deferred()
    {
        check_transaction_alive();
        return std::exchange(deferred_, {});
    }

private:
    // The held-back commands in front of @p sql, as one simple query.
    std::string with_deferred(std::string const& sql)
    {
        if (deferred_.empty())
            return sql;
        std::string all;
        for (auto const& d : deferred_)
            all += d + "; ";
        deferred_.clear();
        return all + sql;
    }

    // A server restart or a dropped TCP connection: reconnect once, between
    // statements, and prepare every statement again on first use. A
    // transaction in flight is lost; until it is rolled back every statement
    // fails, so it can neither be committed by accident (COMMIT outside a
    // transaction only warns) nor be continued in autocommit. A connection
    // left in pipeline mode (a pipeline that could not be read to its end)
    // is in an unknown state and is reset the same way.
    void reconnect_if_broken()
    {
        if (PQstatus(conn_) == CONNECTION_OK && PQpipelineStatus(conn_) == PQ_PIPELINE_OFF)
            return;
        spdlog::warn("PostgreSQL connection lost; reconnecting");
        PQreset(conn_);
        if (PQstatus(conn_) != CONNECTION_OK)
            throw database_error(errc::io, std::string("PostgreSQL reconnect failed: ") +
                                               PQerrorMessage(conn_));
        for (auto& [sql, stmt] : statements_)
            stmt->unprepare();
        deferred_.clear();
        exec(session_setup_);
        if (in_transaction_)
            transaction_lost_ = true;
    }

    void check_transaction_alive() const
    {
        if (transaction_lost_)
            throw database_error(
                errc::io, "PostgreSQL connection lost inside a transaction; it was rolled back");
    }

    std::string uri_;
    std::string session_setup_;
    PGconn* conn_ = nullptr;
    std::unordered_map<std::string, std::unique_ptr<pg_statement>> statements_;
    std::uint64_t serial_ = 0;
    std::vector<std::string> deferred_;
    bool in_transaction_ = false;
    bool transaction_lost_ = false;
};

void pg_statement::run()
{
    PGconn* c = conn_.handle();
    result_.reset();
    pointers_.resize(values_.size());
    for (std::size_t i = 0; i < values_.size(); ++i)
        pointers_[i] = null_[i] ? nullptr : values_[i].c_str();
    auto deferred = conn_.take_deferred();
    if (!deferred.empty() || !prepared_)
    {
        run_pipelined(c, std::move(deferred));
        return;
    }
    result_ptr r(PQexecPrepared(c, name_.c_str(), static_cast<int>(values_.size()),
                                pointers_.data(), nullptr, nullptr, 0));
    auto const status = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK)
        throw_result(c, r.release(), sql_);
    result_ = std::move(r);
}

// Held-back commands, PREPARE (first use) and EXECUTE in one pipeline with
// one Sync: one round trip. Each command's results end with a NULL; after an
// error the rest come back PIPELINE_ABORTED, and the Sync's result ends it
// all. The first error is the one thrown.
void pg_statement::run_pipelined(PGconn* c, std::vector<std::string> deferred)
{
    auto const fail = [&](char const* what)
    {
        throw database_error(errc::io,
                             std::string("PostgreSQL pipeline ") + what + ": " + PQerrorMessage(c));
    };
    if (PQenterPipelineMode(c) != 1)
        fail("enter");
    bool const preparing = !prepared_;
    bool sent = true;
    for (auto const& d : deferred)
        sent = sent && PQsendQueryParams(c, d.c_str(), 0, nullptr, nullptr, nullptr, nullptr, 0);
    if (preparing)
        sent = sent && PQsendPrepare(c, name_.c_str(), sql_.c_str(),
                                     static_cast<int>(values_.size()), nullptr);
    sent = sent && PQsendQueryPrepared(c, name_.c_str(), static_cast<int>(values_.size()),
                                       pointers_.data(), nullptr, nullptr, 0);
    sent = sent && PQpipelineSync(c);

    std::size_t const prepare_index = deferred.size(); // when preparing
    std::size_t const execute_index = deferred.size() + (preparing ? 1 : 0);
    std::size_t command = 0;
    result_ptr first_error;
    std::string error_in;
    result_ptr mine;
    bool synced = false;
    for (int nulls = 0; sent && nulls < 2;)
    {
        result_ptr r(PQgetResult(c));
        if (!r)
        {
            ++command, ++nulls; // two in a row: nothing more is coming (connection lost)
            continue;
        }
        nulls = 0;
        auto const status = PQresultStatus(r.get());
        if (status == PGRES_PIPELINE_SYNC)
        {
            synced = true;
            break;
        }
        if (status == PGRES_FATAL_ERROR && !first_error)
        {
            error_in = command < deferred.size() ? deferred[command] : sql_;
            first_error = std::move(r);
        }
        else if (preparing && command == prepare_index && status == PGRES_COMMAND_OK)
            prepared_ = true;
        else if (command == execute_index &&
                 (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK))
            mine = std::move(r);
    }
    // Out of pipeline mode before throwing: the connection must be usable
    // by the next call (PQexec is refused in pipeline mode).
    bool const exited = synced && PQexitPipelineMode(c) == 1;
    if (first_error)
        throw_result(c, first_error.release(), error_in);
    if (!sent)
        fail("send");
    if (!exited)
        fail("ended early");
    if (!mine)
        throw database_error(errc::internal, "no result for: " + sql_);
    result_ = std::move(mine);
}

} // namespace

std::unique_ptr<connection> open_postgres(std::string const& uri, open_mode mode,
                                          database_options const& options)
{
    return std::make_unique<pg_connection>(uri, mode, options);
}

} // namespace chatstream::storage::detail
