#pragma once
/// @file file_name.hpp
/// What every path that records a file (POST /api/files, attachments on
/// `generate`) applies to the names and kinds it stores (issue 20, finding 9;
/// docs/files.md "Names"). Pure functions over untrusted bytes.
#include <cstddef>
#include <string>
#include <string_view>

namespace chatstream::core
{

/// Longest stored file name, in bytes (a common file-system limit). Names
/// are cut at a UTF-8 character boundary at or below it.
inline constexpr std::size_t max_file_name_bytes = 255;

/// @p name made safe to store and to hand back as a download name: only the
/// part after the last `/` or `\` is kept; control characters (C0, DEL, C1),
/// bidirectional overrides and bytes that are not UTF-8 are dropped; leading
/// dots and spaces and trailing spaces are trimmed; the result is cut to
/// max_file_name_bytes. When nothing is left, @p fallback is sanitised the
/// same way and used, and when that is empty too, `"file"`.
std::string sanitize_file_name(std::string_view name, std::string_view fallback = {});

/// The attachment `type` of a stored MIME type: `image` for image/*, `audio`
/// for audio/*, `file` for everything else.
std::string attachment_type(std::string_view mime_type);

} // namespace chatstream::core
