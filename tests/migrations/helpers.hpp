#pragma once
// Helpers of the migration tests: row dumps for identity checks and running
// the real chatstream binary as a child process.
#include "chatstream/storage/database.hpp"

#include <fmt/format.h>

#include <csignal>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

namespace chatstream::test
{

/// Every row 001 produces (attachments, tool_calls, migration_errors) and the
/// 001 counters, as text; timestamps of the bookkeeping excluded.
inline std::string dump_migrated(std::string const& path)
{
    storage::database db(path, storage::open_mode::read_only);
    std::string out;
    auto dump = [&](std::string const& sql)
    {
        auto& q = db.prepare(sql);
        while (q.executeStep())
        {
            for (int i = 0; i < q.getColumnCount(); ++i)
            {
                auto c = q.getColumn(i);
                out += c.isNull() ? std::string("NULL") : c.getString();
                out += '|';
            }
            out += '\n';
        }
        out += "--\n";
    };
    dump("SELECT * FROM attachments ORDER BY id");
    dump("SELECT * FROM tool_calls ORDER BY id");
    dump("SELECT migration_id, record_id, error, raw FROM migration_errors ORDER BY record_id");
    dump("SELECT id, phase, status, processed, success_count, error_count, total_records FROM "
         "migrations ORDER BY id");
    return out;
}

/// A single value of a query.
inline std::optional<std::string> query_one(storage::database& db, std::string const& sql)
{
    auto& q = db.prepare(sql);
    std::optional<std::string> out;
    if (q.executeStep() && !q.getColumn(0).isNull())
        out = q.getColumn(0).getString();
    q.reset(); // a cached statement left on a row would lock the table against DROP
    return out;
}

/// Starts `chatstream args...` with stdout/stderr to @p output_file; returns its pid.
inline pid_t spawn_chatstream(std::vector<std::string> const& args, std::string const& output_file)
{
    pid_t pid = fork();
    if (pid == 0)
    {
        std::FILE* f = std::fopen(output_file.c_str(), "w");
        if (f)
        {
            dup2(fileno(f), STDOUT_FILENO);
            dup2(fileno(f), STDERR_FILENO);
        }
        std::vector<char*> argv;
        argv.push_back(const_cast<char*>(CHATSTREAM_BINARY));
        for (auto const& a : args)
            argv.push_back(const_cast<char*>(a.c_str()));
        argv.push_back(nullptr);
        execv(CHATSTREAM_BINARY, argv.data());
        _exit(127);
    }
    return pid;
}

inline int wait_exit(pid_t pid)
{
    int status = 0;
    waitpid(pid, &status, 0);
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

struct run_result
{
    int exit_code = 0;
    std::string output;
};

/// Runs `chatstream args...` to completion.
inline run_result run_chatstream(std::vector<std::string> const& args,
                                 std::string const& output_file)
{
    run_result r;
    r.exit_code = wait_exit(spawn_chatstream(args, output_file));
    std::ifstream in(output_file);
    std::stringstream ss;
    ss << in.rdbuf();
    r.output = ss.str();
    return r;
}

} // namespace chatstream::test
