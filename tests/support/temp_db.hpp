#pragma once
// Test support: a migrated database in a fresh temporary directory.
#include "chatstream/migrations/schema_migrator.hpp"
#include "chatstream/storage/database.hpp"

#include <filesystem>
#include <random>
#include <string>

namespace chatstream::test {

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
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    std::filesystem::path const& path() const { return path_; }
    std::string file(std::string const& name) const { return (path_ / name).string(); }

private:
    std::filesystem::path path_;
};

/// Path of a schema-migrated database in @p dir.
inline std::string migrated_db(temp_dir const& dir, std::string const& name = "test.db")
{
    auto path = dir.file(name);
    storage::database db(path, storage::open_mode::read_write);
    migrations::apply_schema(db);
    return path;
}

} // namespace chatstream::test
