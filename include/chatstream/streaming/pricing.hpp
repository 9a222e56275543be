#pragma once
/// @file pricing.hpp
/// Per-model token prices, to store a cost with each message (docs/providers.md).
#include "chatstream/streaming/provider.hpp"

#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace chatstream::streaming
{

/// USD per one million tokens.
struct model_price
{
    double input_per_million = 0;
    double output_per_million = 0;
    /// Reasoning tokens (part of the output); unset: the output rate.
    std::optional<double> reasoning_per_million;
};

/// Model name -> price. A model matches its exact entry, else the longest
/// entry that is a prefix of it followed by `-` (so `gpt-4o-2024-08-06` is
/// priced as `gpt-4o`, and `gpt-4o-mini` never as `gpt-4o`). Immutable once
/// built, so lookups are thread-safe.
class price_table
{
public:
    /// The built-in OpenAI list prices (see docs/providers.md for the date
    /// they were taken; override them with a file when they change).
    static price_table builtin();

    /// The built-in table with the entries of a JSON file laid over it:
    /// `{"model": {"input": USD_per_1M, "output": USD_per_1M, "reasoning"?: USD_per_1M}, ...}`.
    /// @throws std::runtime_error when the file cannot be read or is malformed.
    static price_table from_json_file(std::string const& path);

    /// Lays the entries of JSON text (format of from_json_file) over this table.
    /// @throws std::runtime_error when @p text is malformed.
    void merge_json(std::string_view text);

    void set(std::string model, model_price price) { prices_[std::move(model)] = price; }

    std::optional<model_price> find(std::string_view model) const;

    /// Cost of @p usage with @p model, or std::nullopt for an unknown model
    /// (an unknown price is stored as NULL, never as 0). The reasoning
    /// tokens of the output are charged at the reasoning rate.
    std::optional<double> cost_usd(std::string_view model, step_usage usage) const;

private:
    std::map<std::string, model_price, std::less<>> prices_;
};

/// `price_table::builtin().cost_usd(model, usage)`, on a table built once.
std::optional<double> cost_usd(std::string_view model, step_usage usage);

} // namespace chatstream::streaming
