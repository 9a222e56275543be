// Per-model token prices and the cost of a generation.
#include "chatstream/streaming/pricing.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace chatstream::streaming
{
namespace
{

namespace json = boost::json;

// OpenAI standard-tier list prices, USD per 1M tokens (input, output). Cached
// input and batch discounts are not modelled. Keep docs/providers.md in step.
struct builtin_entry
{
    char const* model;
    model_price price;
};
constexpr builtin_entry builtin_prices[] = {
    {"gpt-4o", {2.50, 10.00}},       {"gpt-4o-mini", {0.15, 0.60}},
    {"gpt-4.1", {2.00, 8.00}},       {"gpt-4.1-mini", {0.40, 1.60}},
    {"gpt-4.1-nano", {0.10, 0.40}},  {"o1", {15.00, 60.00}},
    {"o3-mini", {1.10, 4.40}},       {"o4-mini", {1.10, 4.40}},
    {"gpt-4-turbo", {10.00, 30.00}}, {"gpt-4", {30.00, 60.00}},
    {"gpt-3.5-turbo", {0.50, 1.50}},
};

double price_field(json::object const& o, std::string_view model, std::string_view key)
{
    auto const* v = o.if_contains(key);
    if (!v || !v->is_number())
        throw std::runtime_error("price of '" + std::string(model) + "': '" + std::string(key) +
                                 "' must be a number (USD per 1M tokens)");
    double const d = v->to_number<double>();
    if (d < 0)
        throw std::runtime_error("price of '" + std::string(model) + "' is negative");
    return d;
}

} // namespace

price_table price_table::builtin()
{
    price_table t;
    for (auto const& e : builtin_prices)
        t.set(e.model, e.price);
    return t;
}

void price_table::merge_json(std::string_view text)
{
    boost::system::error_code ec;
    auto v = json::parse(text, ec);
    if (ec)
        throw std::runtime_error("price table is not valid JSON: " + ec.message());
    if (!v.is_object())
        throw std::runtime_error("price table must be a JSON object of model -> {input, output}");
    for (auto const& [model, entry] : v.as_object())
    {
        if (!entry.is_object())
            throw std::runtime_error("price of '" + std::string(model) +
                                     "' must be an object {input, output}");
        auto const& o = entry.as_object();
        model_price price{price_field(o, model, "input"), price_field(o, model, "output"),
                          std::nullopt};
        if (o.contains("reasoning"))
            price.reasoning_per_million = price_field(o, model, "reasoning");
        set(std::string(model), price);
    }
}

price_table price_table::from_json_file(std::string const& path)
{
    std::ifstream in(path, std::ios::binary);
    if (!in)
        throw std::runtime_error("cannot read price table '" + path + "'");
    std::ostringstream s;
    s << in.rdbuf();
    auto t = builtin();
    t.merge_json(s.str());
    return t;
}

std::optional<model_price> price_table::find(std::string_view model) const
{
    if (auto it = prices_.find(model); it != prices_.end())
        return it->second;
    // Longest entry that is a prefix of the model followed by '-' (a dated
    // snapshot or variant of that family).
    std::optional<model_price> best;
    std::size_t best_len = 0;
    for (auto const& [name, price] : prices_)
        if (name.size() > best_len && model.size() > name.size() && model.starts_with(name) &&
            model[name.size()] == '-')
        {
            best = price;
            best_len = name.size();
        }
    return best;
}

std::optional<double> price_table::cost_usd(std::string_view model, step_usage usage) const
{
    auto const p = find(model);
    if (!p)
        return std::nullopt;
    // Upstreams count reasoning inside completion_tokens; one that does not
    // (reasoning above the output) is charged for both.
    auto const reasoning = std::max<std::int64_t>(usage.reasoning_tokens, 0);
    auto const answer = std::max<std::int64_t>(usage.output_tokens - reasoning, 0);
    return (static_cast<double>(usage.input_tokens) * p->input_per_million +
            static_cast<double>(answer) * p->output_per_million +
            static_cast<double>(reasoning) *
                p->reasoning_per_million.value_or(p->output_per_million)) /
           1e6;
}

std::optional<double> cost_usd(std::string_view model, step_usage usage)
{
    static price_table const table = price_table::builtin();
    return table.cost_usd(model, usage);
}

} // namespace chatstream::streaming
