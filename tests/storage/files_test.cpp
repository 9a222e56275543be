#include "chatstream/storage/files.hpp"

#include "chatstream/core/clock.hpp"
#include "chatstream/core/ids.hpp"
#include "chatstream/storage/blob_store.hpp"
#include "chatstream/storage/repositories.hpp"
#include "support/temp_db.hpp"

#include <catch2/catch.hpp>

#include <fstream>

using namespace chatstream;
using namespace chatstream::storage;

namespace
{

struct files_fixture
{
    test::temp_dir dir;
    database db{test::migrated_db(dir), open_mode::read_write};
    blob_store blobs{dir.path() / "files"};
    std::string alice = users::ensure(db, "alice");
    std::string bob = users::ensure(db, "bob");

    // Streams @p bytes through a blob_writer and records alice's (or @p user's) upload.
    std::string upload(std::string const& bytes, std::string const& user, std::int64_t at)
    {
        auto w = blobs.create_temp();
        w.write(bytes.data(), bytes.size());
        files::file_row f;
        f.storage_id = w.finish();
        f.size = static_cast<std::int64_t>(w.size());
        f.mime_type = "text/plain";
        f.created_at = at;
        blobs.commit(w, f.storage_id);
        files::record_upload(db, f, user, "note.txt", at);
        return f.storage_id;
    }

    std::pair<std::string, std::string> message_with(std::string const& user,
                                                     std::vector<std::string> const& ids)
    {
        conversation_row c;
        c.id = core::new_id();
        c.user_id = user;
        c.created_at = c.updated_at = core::now_ms();
        conversations::insert(db, c);
        message_row m;
        m.id = core::new_id();
        m.conversation_id = c.id;
        m.user_id = user;
        m.role = "user";
        m.created_at = m.updated_at = core::now_ms();
        messages::insert(db, m);
        std::int64_t pos = 0;
        for (auto const& id : ids)
        {
            attachment_row a;
            a.id = core::new_id();
            a.message_id = m.id;
            a.conversation_id = c.id;
            a.user_id = user;
            a.position = pos++;
            a.type = "file";
            a.name = "n";
            a.storage_id = id;
            a.mime_type = "text/plain";
            a.size = 1;
            a.created_at = m.created_at;
            attachments::insert(db, a);
        }
        return {c.id, m.id};
    }

    std::vector<std::string> sweep(std::int64_t cutoff)
    {
        auto ids = files::collect_garbage(db, cutoff, 100);
        for (auto const& id : ids)
            blobs.remove(id);
        return ids;
    }
};

} // namespace

TEST_CASE("blob_store: content addressed, hashed while streaming, stored once", "[storage][files]")
{
    test::temp_dir dir;
    blob_store blobs(dir.path() / "files");
    auto w = blobs.create_temp();
    w.write("hello ", 6);
    w.write("world", 5);
    auto const id = w.finish();
    // sha256("hello world")
    CHECK(id == "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9");
    CHECK(w.size() == 11);
    blobs.commit(w, id);
    CHECK(blobs.exists(id));
    CHECK(blobs.path_of(id) == dir.path() / "files" / "b9" / id.substr(2));

    auto w2 = blobs.create_temp();
    w2.write("hello world", 11);
    REQUIRE(w2.finish() == id);
    auto const tmp = w2.temp_path();
    blobs.commit(w2, id);
    CHECK_FALSE(std::filesystem::exists(tmp)); // the duplicate was dropped
    CHECK(std::filesystem::file_size(blobs.path_of(id)) == 11);

    // An abandoned upload leaves nothing behind.
    std::filesystem::path abandoned;
    {
        auto w3 = blobs.create_temp();
        w3.write("x", 1);
        abandoned = w3.temp_path();
        CHECK(std::filesystem::exists(abandoned));
    }
    CHECK_FALSE(std::filesystem::exists(abandoned));

    CHECK(blob_store::valid_id(id));
    CHECK_FALSE(blob_store::valid_id("../etc/passwd"));
    CHECK_FALSE(blob_store::valid_id(std::string(64, 'A')));
}

TEST_CASE("blob_store: a restart removes partial uploads", "[storage][files]")
{
    test::temp_dir dir;
    std::filesystem::create_directories(dir.path() / "files" / "tmp");
    std::ofstream(dir.path() / "files" / "tmp" / "up-1-2-3") << "partial";
    blob_store blobs(dir.path() / "files");
    CHECK(std::filesystem::is_empty(dir.path() / "files" / "tmp"));
}

TEST_CASE_METHOD(files_fixture, "files: who may read and attach", "[storage][files]")
{
    auto const now = core::now_ms();
    auto const id = upload("alice's bytes", alice, now);
    CHECK(files::can_attach(db, alice, id));
    CHECK_FALSE(files::can_attach(db, bob, id));
    auto r = files::find_readable(db, alice, id);
    REQUIRE(r);
    CHECK(r->name == "note.txt");
    CHECK(r->file.size == 13);
    CHECK_FALSE(files::find_readable(db, bob, id));

    // Bob uploading the same bytes: one files row, two uploads rows.
    upload("alice's bytes", bob, now);
    CHECK(files::find_readable(db, bob, id));
    auto& q = db.prepare("SELECT (SELECT count(*) FROM files), (SELECT count(*) FROM uploads)");
    REQUIRE(q.executeStep());
    CHECK(q.getColumn(0).getInt() == 1);
    CHECK(q.getColumn(1).getInt() == 2);
    q.reset();

    // A legacy attachment (a storage id chatstream never stored) can be re-attached
    // by its owner, but there is nothing to read.
    message_with(alice, {"kg2legacyconvexid"});
    CHECK(files::can_attach(db, alice, "kg2legacyconvexid"));
    CHECK_FALSE(files::can_attach(db, bob, "kg2legacyconvexid"));
    CHECK_FALSE(files::find_readable(db, alice, "kg2legacyconvexid"));
}

TEST_CASE_METHOD(files_fixture, "files: an attachment makes its file readable to the message owner",
                 "[storage][files]")
{
    auto const id = upload("shared", alice, core::now_ms());
    // Bob never uploaded it, but a message of his references it.
    message_with(bob, {id});
    CHECK(files::find_readable(db, bob, id));
    CHECK(files::can_attach(db, bob, id));
}

TEST_CASE_METHOD(files_fixture, "files: find_attachable reports what was stored",
                 "[storage][files]")
{
    auto const id = upload("stored bytes", alice, core::now_ms());
    auto a = files::find_attachable(db, alice, id);
    REQUIRE(a);
    CHECK(a->mime_type == "text/plain");
    CHECK(a->size == 12);
    CHECK(a->name == "note.txt");
    CHECK_FALSE(a->type);
    CHECK_FALSE(files::find_attachable(db, bob, id));

    // Bob re-attaching a file one of his messages references: the blob's
    // values, the name of his attachment (message_with stores "n", size 1).
    message_with(bob, {id});
    auto b = files::find_attachable(db, bob, id);
    REQUIRE(b);
    CHECK(b->size == 12);
    CHECK(b->mime_type == "text/plain");
    CHECK(b->name == "n");

    // A legacy id (no files row): the earlier attachment row's values.
    message_with(alice, {"kg2legacyconvexid"});
    auto l = files::find_attachable(db, alice, "kg2legacyconvexid");
    REQUIRE(l);
    CHECK(l->type == std::optional<std::string>("file"));
    CHECK(l->size == 1);
    CHECK(l->name == "n");
}

TEST_CASE_METHOD(files_fixture, "files: GC keeps referenced and fresh files, collects the rest",
                 "[storage][files]")
{
    auto const now = core::now_ms();
    auto const old = now - 10'000;
    auto const attached = upload("attached", alice, old);
    auto const fresh = upload("fresh", alice, now);
    auto const stale = upload("stale", alice, old);
    auto const both = upload("in two messages", alice, old);
    auto [conv, msg] = message_with(alice, {attached, both});
    auto [conv2, msg2] = message_with(alice, {both});

    auto collected = sweep(now - 5'000);
    CHECK(collected == std::vector<std::string>{stale});
    CHECK_FALSE(blobs.exists(stale));
    CHECK_FALSE(files::can_attach(db, alice, stale)); // its uploads row went with it
    CHECK(blobs.exists(attached));
    CHECK(blobs.exists(fresh));
    CHECK(blobs.exists(both));

    // Deleting the message cascades to its attachment rows; the file only
    // it referenced goes at the next sweep, the one still referenced stays.
    db.exec("DELETE FROM messages WHERE id = '" + msg + "'");
    collected = sweep(now - 5'000);
    CHECK(collected == std::vector<std::string>{attached});
    CHECK_FALSE(blobs.exists(attached));
    CHECK(blobs.exists(both));

    // Deleting the conversation cascades too.
    db.exec("DELETE FROM conversations WHERE id = '" + conv2 + "'");
    CHECK(sweep(now - 5'000) == std::vector<std::string>{both});

    // An upload at or after the cutoff keeps the file; a re-upload refreshes it.
    CHECK(sweep(now).empty());
    upload("fresh", bob, now + 5);
    CHECK(sweep(now + 5).empty());
    CHECK(blobs.exists(fresh));
    CHECK(sweep(now + 10) == std::vector<std::string>{fresh});
}
