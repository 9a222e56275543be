#pragma once
// Test support: the real chatstream binary on a free port (and, through
// ws_client.hpp, a blocking Beast WebSocket/HTTP client to talk to it).
#include "support/temp_db.hpp"
#include "ws_client.hpp"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace chatstream::test
{

/// The first line of a sanitizer report in @p log (ASan, LSan, UBSan, TSan),
/// or empty. UBSan recovers and prints `runtime error:`; the others abort
/// or, at exit, turn the status non-zero, but a report is a failure either way.
inline std::string sanitizer_report(std::string const& log)
{
    static constexpr std::array<std::string_view, 5> markers{
        "ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "WARNING: ThreadSanitizer",
        "ERROR: UndefinedBehaviorSanitizer", ": runtime error: "};
    for (auto m : markers)
        if (auto at = log.find(m); at != std::string::npos)
        {
            auto const begin = log.rfind('\n', at);
            auto const from = begin == std::string::npos ? 0 : begin + 1;
            return log.substr(from, log.find('\n', at) - from);
        }
    return {};
}

/// `chatstream serve` in a child process; the port is read from its log.
class server_process
{
public:
    server_process(std::string db, std::vector<std::string> extra = {},
                   std::vector<std::string> env = {})
        : db_(std::move(db)), extra_(std::move(extra)), env_(std::move(env))
    {
        start();
    }
    /// Stops the server and fails the running test case if it did not exit
    /// 0 on a SIGTERM, or if any of its runs printed a sanitizer report.
    ~server_process()
    {
        // A test that throws (e.g. a read timed out) shows the server's side.
        if (std::uncaught_exceptions() > 0)
            std::fprintf(stderr, "---- server log ----\n%s\n", log().c_str());
        stop(SIGTERM);
        for (auto const& p : problems_)
            FAIL_CHECK(p);
    }
    server_process(server_process const&) = delete;
    server_process& operator=(server_process const&) = delete;

    unsigned short port() const { return port_; }
    pid_t pid() const { return pid_; }
    /// Resident memory of the server now (VmRSS), in KiB; 0 when not running.
    long rss_kib() const
    {
        std::ifstream in("/proc/" + std::to_string(pid_) + "/status");
        std::string line;
        while (std::getline(in, line))
            if (line.rfind("VmRSS:", 0) == 0)
                return std::stol(line.substr(6));
        return 0;
    }
    std::string log() const
    {
        std::ifstream in(log_path_);
        std::stringstream ss;
        ss << in.rdbuf();
        return ss.str();
    }

    /// Sends @p sig and waits for the exit. @return the exit status (or -signal).
    int stop(int sig = SIGTERM, std::chrono::seconds wait = std::chrono::seconds(20))
    {
        if (pid_ <= 0)
            return exit_status_;
        ::kill(pid_, sig);
        auto const deadline = std::chrono::steady_clock::now() + wait;
        int status = 0;
        while (::waitpid(pid_, &status, WNOHANG) == 0)
        {
            if (std::chrono::steady_clock::now() > deadline)
            {
                ::kill(pid_, SIGKILL);
                ::waitpid(pid_, &status, 0);
                break;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        pid_ = -1;
        exit_status_ = WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
        // SIGKILL is the test's own doing; any other stop must be clean.
        auto const text = log();
        if (sig != SIGKILL && exit_status_ != 0)
            problems_.push_back("chatstream exited with status " + std::to_string(exit_status_) +
                                " on signal " + std::to_string(sig) + "; its log (" + log_path_ +
                                "):\n" + text.substr(text.size() > 4000 ? text.size() - 4000 : 0));
        if (auto report = sanitizer_report(text); !report.empty())
            problems_.push_back("sanitizer report in " + log_path_ + ": " + report);
        return exit_status_;
    }

    /// Starts again on the same database (after a stop or kill).
    void restart()
    {
        stop(SIGTERM);
        start();
    }

private:
    void start()
    {
        static int counter = 0;
        // A PostgreSQL URI is no place for a log file.
        log_path_ = (db_.starts_with("postgres") ? std::filesystem::temp_directory_path().string() +
                                                       "/chatstream-" + std::to_string(::getpid())
                                                 : db_) +
                    ".server" + std::to_string(++counter) + ".log";
        std::vector<std::string> args{CHATSTREAM_BINARY, "serve", "--db",       db_, "--port", "0",
                                      "--threads",       "2",     "--flush-ms", "20"};
        args.insert(args.end(), extra_.begin(), extra_.end());
        pid_ = ::fork();
        if (pid_ < 0)
            throw std::runtime_error("fork failed");
        if (pid_ == 0)
        {
            int fd = ::open(log_path_.c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0644);
            ::dup2(fd, 1);
            ::dup2(fd, 2);
            for (auto const& e : env_)
                ::putenv(const_cast<char*>(e.c_str()));
            std::vector<char*> argv;
            for (auto& a : args)
                argv.push_back(a.data());
            argv.push_back(nullptr);
            ::execv(argv[0], argv.data());
            ::_exit(127);
        }
        std::regex const listening(R"(listening on http://[^:]+:(\d+))");
        auto const deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
        while (std::chrono::steady_clock::now() < deadline)
        {
            std::smatch m;
            auto text = log();
            if (std::regex_search(text, m, listening))
            {
                port_ = static_cast<unsigned short>(std::stoi(m[1]));
                return;
            }
            int status = 0;
            if (::waitpid(pid_, &status, WNOHANG) == pid_)
            {
                pid_ = -1;
                throw std::runtime_error("server exited at startup:\n" + text);
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        throw std::runtime_error("server did not start:\n" + log());
    }

    std::string db_;
    std::vector<std::string> extra_;
    std::vector<std::string> env_;
    std::string log_path_;
    pid_t pid_ = -1;
    int exit_status_ = 0;
    unsigned short port_ = 0;
    std::vector<std::string> problems_; // reported when the object goes away
};

} // namespace chatstream::test
