#include "chatstream/storage/blob_store.hpp"

#include <openssl/evp.h>

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <random>
#include <system_error>

namespace chatstream::storage
{

namespace fs = std::filesystem;

//------------------------------------------------------------------------------

struct blob_writer::hasher
{
    hasher() : ctx(EVP_MD_CTX_new())
    {
        if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr) != 1)
            throw std::system_error(std::make_error_code(std::errc::not_enough_memory),
                                    "sha256 init");
    }
    ~hasher() { EVP_MD_CTX_free(ctx); }
    EVP_MD_CTX* ctx;
};

blob_writer::blob_writer(fs::path path, int fd)
    : path_(std::move(path)), fd_(fd), hash_(std::make_unique<hasher>())
{
}

blob_writer::blob_writer(blob_writer&& o) noexcept
    : path_(std::move(o.path_)), fd_(o.fd_), size_(o.size_), hash_(std::move(o.hash_))
{
    o.fd_ = -1;
    o.path_.clear();
}

blob_writer::~blob_writer()
{
    if (fd_ >= 0)
        ::close(fd_);
    if (!path_.empty())
    {
        std::error_code ec;
        fs::remove(path_, ec); // a no-op once commit moved it
    }
}

void blob_writer::write(void const* data, std::size_t size)
{
    auto const* p = static_cast<char const*>(data);
    EVP_DigestUpdate(hash_->ctx, p, size);
    while (size > 0)
    {
        auto const n = ::write(fd_, p, size);
        if (n < 0)
        {
            if (errno == EINTR)
                continue;
            throw std::system_error(errno, std::generic_category(), "write " + path_.string());
        }
        p += n;
        size -= static_cast<std::size_t>(n);
        size_ += static_cast<std::size_t>(n);
    }
}

std::string blob_writer::finish()
{
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    EVP_DigestFinal_ex(hash_->ctx, digest, &length);
    // No fsync: like the database (synchronous=NORMAL) a blob survives a
    // killed process through the page cache; power loss is out of scope.
    if (fd_ >= 0 && ::close(fd_) != 0)
    {
        fd_ = -1;
        throw std::system_error(errno, std::generic_category(), "close " + path_.string());
    }
    fd_ = -1;
    static char const hex[] = "0123456789abcdef";
    std::string out;
    out.reserve(2 * length);
    for (unsigned i = 0; i < length; ++i)
    {
        out += hex[digest[i] >> 4];
        out += hex[digest[i] & 15];
    }
    return out;
}

//------------------------------------------------------------------------------

blob_store::blob_store(fs::path root) : root_(std::move(root))
{
    fs::create_directories(root_ / "tmp");
    // Only one server owns a files directory: whatever is in tmp/ now is a
    // partial upload of a previous process.
    for (auto const& e : fs::directory_iterator(root_ / "tmp"))
    {
        std::error_code ec;
        fs::remove(e.path(), ec);
    }
}

bool blob_store::valid_id(std::string_view id) noexcept
{
    if (id.size() != 64)
        return false;
    for (char c : id)
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
    return true;
}

fs::path blob_store::path_of(std::string_view id) const
{
    return root_ / std::string(id.substr(0, 2)) / std::string(id.substr(2));
}

blob_writer blob_store::create_temp() const
{
    static std::atomic<std::uint64_t> counter{0};
    thread_local std::mt19937_64 rng{std::random_device{}()};
    auto path = root_ / "tmp" /
                ("up-" + std::to_string(::getpid()) + "-" + std::to_string(counter.fetch_add(1)) +
                 "-" + std::to_string(rng()));
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    if (fd < 0)
        throw std::system_error(errno, std::generic_category(), "create " + path.string());
    return blob_writer(std::move(path), fd);
}

void blob_store::commit(blob_writer& w, std::string const& storage_id) const
{
    auto const target = path_of(storage_id);
    if (fs::exists(target))
    {
        // Same hash, same bytes: keep the stored copy (dedup).
        fs::remove(w.path_);
    }
    else
    {
        fs::create_directories(target.parent_path());
        fs::rename(w.path_, target); // atomic: readers see all or nothing
    }
    w.path_.clear();
}

bool blob_store::remove(std::string const& storage_id) const noexcept
{
    std::error_code ec;
    return fs::remove(path_of(storage_id), ec);
}

bool blob_store::exists(std::string const& storage_id) const noexcept
{
    std::error_code ec;
    return fs::exists(path_of(storage_id), ec);
}

} // namespace chatstream::storage
