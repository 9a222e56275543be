#pragma once
/// @file blob_store.hpp
/// Content-addressed file storage for uploads (issue 11): a blob's id is the
/// lowercase hex SHA-256 of its bytes and it lives at `<root>/ab/cdef...`,
/// so the same bytes are stored once whoever uploads them.
///
/// Writing a blob is two steps: a blob_writer streams bytes into a temporary
/// file under `<root>/tmp/` while hashing them; blob_store::commit then moves
/// the temporary file to its content address. commit and remove change
/// what is on disk and must run on the storage writer thread, inside the job
/// that changes the `files` rows, so the rows and the directory change in
/// the same order (no upload can race the garbage collector).
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

namespace chatstream::storage
{

/// A temporary file being written, with a running SHA-256. Not thread-safe;
/// move-constructible. The destructor removes the temporary file unless it was committed.
class blob_writer
{
public:
    blob_writer(blob_writer&&) noexcept;
    blob_writer& operator=(blob_writer&&) = delete;
    ~blob_writer();

    /// Appends @p size bytes. @throws std::system_error on a failed write.
    void write(void const* data, std::size_t size);
    /// Closes the file and returns the hex SHA-256 of everything written.
    /// @throws std::system_error
    std::string finish();

    std::uint64_t size() const noexcept { return size_; }
    std::filesystem::path const& temp_path() const noexcept { return path_; }

private:
    friend class blob_store;
    struct hasher;
    blob_writer(std::filesystem::path path, int fd);

    std::filesystem::path path_;
    int fd_ = -1;
    std::uint64_t size_ = 0;
    std::unique_ptr<hasher> hash_;
};

/// The files directory. Thread-safe for everything but the writer-thread
/// rule of commit/remove above.
class blob_store
{
public:
    /// Creates @p root and `root/tmp` if missing and removes temporary files
    /// a crashed process left behind.
    /// @throws std::filesystem::filesystem_error
    explicit blob_store(std::filesystem::path root);

    std::filesystem::path const& root() const noexcept { return root_; }

    /// True for 64 lowercase hex digits (the only ids this store hands out).
    static bool valid_id(std::string_view storage_id) noexcept;

    /// Where blob @p storage_id lives (it may not exist). @pre valid_id.
    std::filesystem::path path_of(std::string_view storage_id) const;

    /// A new temporary file. @throws std::system_error
    blob_writer create_temp() const;

    /// Moves the finished temporary file of @p w to the address @p storage_id;
    /// when that blob already exists the temporary file is dropped instead.
    /// Writer thread only. @throws std::filesystem::filesystem_error
    void commit(blob_writer& w, std::string const& storage_id) const;

    /// Deletes blob @p storage_id; false when it was not there. Writer thread only.
    bool remove(std::string const& storage_id) const noexcept;

    bool exists(std::string const& storage_id) const noexcept;

private:
    std::filesystem::path root_;
};

} // namespace chatstream::storage
