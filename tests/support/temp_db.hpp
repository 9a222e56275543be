#pragma once
// Test support: a migrated database in a fresh temporary directory.
#include "chatstream/migrations/schema_migrator.hpp"
#include "chatstream/storage/database.hpp"

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace chatstream::test
{

/// The backend the storage and migration suites run against: SQLite files by
/// default, PostgreSQL when CHATSTREAM_TEST_BACKEND=postgres (ctest registers
/// those suites a second time, prefixed `pg/`, with that variable; the
/// cluster's URL is CHATSTREAM_TEST_PG_URL, see scripts/pg.sh).
inline bool testing_postgres()
{
    char const* b = std::getenv("CHATSTREAM_TEST_BACKEND");
    return b && std::string(b) == "postgres";
}

/// Ends the running test case as skipped: ctest registers every case with
/// SKIP_RETURN_CODE 77 (tests/CMakeLists.txt), so it reads "Skipped", never
/// "Passed", and scripts/test.sh counts it apart. For what the machine
/// lacks (a privilege, a limit); call it before making anything that needs
/// cleaning up, since the process exits here.
[[noreturn]] inline void skip_test(std::string const& why)
{
    std::fprintf(stderr, "SKIPPED: %s\n", why.c_str());
    std::fflush(nullptr);
    std::_Exit(77);
}

inline std::string postgres_test_url()
{
    char const* url = std::getenv("CHATSTREAM_TEST_PG_URL");
    if (!url || !*url)
        throw std::runtime_error("CHATSTREAM_TEST_BACKEND=postgres needs CHATSTREAM_TEST_PG_URL "
                                 "(eval \"$(scripts/pg.sh start /tmp/chatstream-pg)\")");
    return url;
}

/// A unique temporary directory, removed with its contents on destruction.
class temp_dir
{
public:
    temp_dir()
    {
        std::random_device rd;
        path_ = std::filesystem::temp_directory_path() /
                ("chatstream-test-" + std::to_string(rd()) + std::to_string(rd()));
        std::filesystem::create_directories(path_);
    }
    ~temp_dir()
    {
        if (!schemas_.empty())
        {
            try
            {
                storage::database admin(postgres_test_url(), storage::open_mode::read_write);
                for (auto const& s : schemas_)
                    admin.try_exec("DROP SCHEMA IF EXISTS " + s + " CASCADE");
            }
            catch (...)
            {
            }
        }
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    temp_dir(temp_dir const&) = delete;
    temp_dir& operator=(temp_dir const&) = delete;

    std::filesystem::path const& path() const { return path_; }
    std::string file(std::string const& name) const { return (path_ / name).string(); }

    /// Where test database @p name lives: a file in this directory, or (when
    /// testing PostgreSQL) a fresh schema, made the connection's search_path
    /// through the URI and dropped with this directory. Same name, same database.
    std::string db(std::string const& name = "test.db")
    {
        if (!testing_postgres())
            return file(name);
        for (auto const& [n, location] : databases_)
            if (n == name)
                return location;
        auto const url = postgres_test_url();
        std::string schema =
            "t" + std::to_string(std::random_device{}()) + "_" + std::to_string(databases_.size());
        {
            storage::database admin(url, storage::open_mode::read_write);
            admin.exec("CREATE SCHEMA " + schema);
        }
        schemas_.push_back(schema);
        auto location = url + (url.find('?') == std::string::npos ? "?" : "&") +
                        "options=-csearch_path%3D" + schema;
        databases_.emplace_back(name, location);
        return location;
    }

private:
    std::filesystem::path path_;
    std::vector<std::string> schemas_;
    std::vector<std::pair<std::string, std::string>> databases_;
};

/// Location of a schema-migrated database in @p dir.
inline std::string migrated_db(temp_dir& dir, std::string const& name = "test.db")
{
    auto path = dir.db(name);
    storage::database db(path, storage::open_mode::read_write);
    migrations::apply_schema(db);
    return path;
}

} // namespace chatstream::test
