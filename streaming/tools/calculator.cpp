// calculator tool: a small recursive-descent parser over doubles.
//
//   expr   := term (('+'|'-') term)*
//   term   := unary (('*'|'/'|'%') unary)*
//   unary  := ('+'|'-') unary | power
//   power  := atom ('^' unary)?          right-associative, binds tighter than unary minus on its
//   left atom   := number | name | name '(' expr (',' expr)* ')' | '(' expr ')'
#include "chatstream/streaming/tools.hpp"

#include <cctype>
#include <charconv>
#include <cmath>
#include <numbers>
#include <stdexcept>
#include <string>
#include <vector>

namespace chatstream::streaming
{
namespace
{

class expression_parser
{
public:
    explicit expression_parser(std::string_view text) : text_(text) {}

    double parse()
    {
        if (text_.size() > 4096)
            fail("expression is longer than 4096 characters");
        double v = expr();
        skip_space();
        if (pos_ != text_.size())
            fail("unexpected '" + std::string(1, text_[pos_]) + "'");
        if (!std::isfinite(v))
            fail("result is not a finite number");
        return v;
    }

private:
    [[noreturn]] void fail(std::string const& what) const
    {
        throw std::invalid_argument(what + " at position " + std::to_string(pos_));
    }

    void skip_space()
    {
        while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_])))
            ++pos_;
    }
    bool eat(char c)
    {
        skip_space();
        if (pos_ < text_.size() && text_[pos_] == c)
        {
            ++pos_;
            return true;
        }
        return false;
    }

    // Depth guard: "((((...))))" must not overflow the stack.
    struct depth_guard
    {
        explicit depth_guard(expression_parser& p) : p_(p)
        {
            if (++p_.depth_ > 100)
                p_.fail("expression nests too deeply");
        }
        ~depth_guard() { --p_.depth_; }
        expression_parser& p_;
    };

    double expr()
    {
        depth_guard g(*this);
        double v = term();
        for (;;)
        {
            if (eat('+'))
                v += term();
            else if (eat('-'))
                v -= term();
            else
                return v;
        }
    }

    double term()
    {
        double v = unary();
        for (;;)
        {
            if (eat('*'))
                v *= unary();
            else if (eat('/'))
            {
                double d = unary();
                if (d == 0)
                    fail("division by zero");
                v /= d;
            }
            else if (eat('%'))
            {
                double d = unary();
                if (d == 0)
                    fail("modulo by zero");
                v = std::fmod(v, d);
            }
            else
                return v;
        }
    }

    double unary()
    {
        depth_guard g(*this);
        if (eat('-'))
            return -unary();
        if (eat('+'))
            return unary();
        return power();
    }

    double power()
    {
        double base = atom();
        if (eat('^'))
            return std::pow(base, unary());
        return base;
    }

    double atom()
    {
        skip_space();
        if (pos_ >= text_.size())
            fail("unexpected end of expression");
        char const c = text_[pos_];
        if (c == '(')
        {
            ++pos_;
            double v = expr();
            if (!eat(')'))
                fail("missing ')'");
            return v;
        }
        if (std::isdigit(static_cast<unsigned char>(c)) || c == '.')
            return number();
        if (std::isalpha(static_cast<unsigned char>(c)))
            return named();
        fail("unexpected '" + std::string(1, c) + "'");
    }

    double number()
    {
        double v = 0;
        auto const* first = text_.data() + pos_;
        auto r = std::from_chars(first, text_.data() + text_.size(), v);
        if (r.ec != std::errc{})
            fail("malformed number");
        pos_ += static_cast<std::size_t>(r.ptr - first);
        return v;
    }

    double named()
    {
        auto const start = pos_;
        while (pos_ < text_.size() &&
               (std::isalnum(static_cast<unsigned char>(text_[pos_])) || text_[pos_] == '_'))
            ++pos_;
        std::string name(text_.substr(start, pos_ - start));
        for (auto& ch : name)
            ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        if (!eat('('))
        {
            if (name == "pi")
                return std::numbers::pi;
            if (name == "e")
                return std::numbers::e;
            pos_ = start;
            fail("unknown name '" + name + "'");
        }
        std::vector<double> args;
        if (!eat(')'))
        {
            do
                args.push_back(expr());
            while (eat(','));
            if (!eat(')'))
                fail("missing ')' after arguments of " + name);
        }
        return call(name, args, start);
    }

    double call(std::string const& name, std::vector<double> const& a, std::size_t at)
    {
        auto arity = [&](std::size_t n)
        {
            if (a.size() != n)
            {
                pos_ = at;
                fail(name + " takes " + std::to_string(n) + " argument" + (n == 1 ? "" : "s"));
            }
        };
        auto domain = [&](bool ok)
        {
            if (!ok)
            {
                pos_ = at;
                fail("argument of " + name + " is out of its domain");
            }
        };
        if (name == "min" || name == "max")
        {
            if (a.empty())
            {
                pos_ = at;
                fail(name + " needs at least one argument");
            }
            double v = a[0];
            for (double x : a)
                v = name == "min" ? std::min(v, x) : std::max(v, x);
            return v;
        }
        if (name == "pow")
            return arity(2), std::pow(a[0], a[1]);
        arity(1);
        double const x = a[0];
        if (name == "sqrt")
            return domain(x >= 0), std::sqrt(x);
        if (name == "abs")
            return std::fabs(x);
        if (name == "sin")
            return std::sin(x);
        if (name == "cos")
            return std::cos(x);
        if (name == "tan")
            return std::tan(x);
        if (name == "asin")
            return domain(x >= -1 && x <= 1), std::asin(x);
        if (name == "acos")
            return domain(x >= -1 && x <= 1), std::acos(x);
        if (name == "atan")
            return std::atan(x);
        if (name == "ln")
            return domain(x > 0), std::log(x);
        if (name == "log" || name == "log10")
            return domain(x > 0), std::log10(x);
        if (name == "log2")
            return domain(x > 0), std::log2(x);
        if (name == "exp")
            return std::exp(x);
        if (name == "floor")
            return std::floor(x);
        if (name == "ceil")
            return std::ceil(x);
        if (name == "round")
            return std::round(x);
        pos_ = at;
        fail("unknown function '" + name + "'");
    }

    std::string_view text_;
    std::size_t pos_ = 0;
    int depth_ = 0;
};

} // namespace

double evaluate_expression(std::string_view expression)
{
    return expression_parser(expression).parse();
}

} // namespace chatstream::streaming
