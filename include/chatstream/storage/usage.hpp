#pragma once
/// @file usage.hpp
/// Usage accounting per (user, UTC day, model): the `usage` table. Called
/// from writer jobs, inside the transaction that writes the message.
#include "chatstream/storage/database.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace chatstream::storage::usage
{

struct usage_row
{
    std::string day;   ///< YYYY-MM-DD (UTC)
    std::string model; ///< "" = the provider's default
    std::int64_t input_tokens = 0;
    std::int64_t output_tokens = 0;
    double cost = 0; ///< USD
    std::int64_t message_count = 0;
};

/// One accepted generation (counted against the daily message limit).
void add_message(database& db, std::string const& user_id, std::string const& day,
                 std::string const& model);

/// The tokens and cost of a finished generation.
void add_completion(database& db, std::string const& user_id, std::string const& day,
                    std::string const& model, std::int64_t input_tokens, std::int64_t output_tokens,
                    double cost);

/// Generations accepted for @p user_id on @p day, all models.
std::int64_t messages_on(database& db, std::string const& user_id, std::string const& day);

/// USD spent by @p user_id on days in [@p from_day, @p to_day] (inclusive).
double cost_between(database& db, std::string const& user_id, std::string const& from_day,
                    std::string const& to_day);

/// Rows of @p user_id with day in [@p from_day, @p to_day], by day then model.
std::vector<usage_row> list(database& db, std::string const& user_id, std::string const& from_day,
                            std::string const& to_day);

} // namespace chatstream::storage::usage
