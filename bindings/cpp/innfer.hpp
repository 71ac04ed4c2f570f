// innfer.hpp: header-only C++17 bindings over the innfer C API (include/innfer.h).
//
//   #include "innfer.hpp"       // needs innfer.h on the include path
//   innfer::Model model("model.safetensors");
//   innfer::Session session(model, 256);          // heap session, at most 256 rows per pass
//   session.reseed(42, 0);
//   std::vector<float> x = session.sample(y, 1000); // [1000][x_dim], row-major
//
// Link with libinnfer (static: also -lpthread -ldl -lm on Linux; the CMake package
// `find_package(innfer)` → `innfer::innfer` does that for you).
//
// Errors: every failing call throws innfer::Error, which carries the C status
// (innfer_status, see INNFER_STATUS_* in innfer.h) and the library's message.
//
// Lifetimes: a Model holds the loaded C model through a reference count that its copies and
// every Session made from it share, so a Session stays valid when the Model object it was made
// from is moved, reallocated (e.g. inside a std::vector) or destroyed; the C model is freed with
// the last of them. A Session is used by one thread at a time; a Model (and its copies) may be
// shared by any number of threads.
#ifndef INNFER_HPP
#define INNFER_HPP

#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "innfer.h"

namespace innfer {

/// A failed innfer call: the C status and the library's message.
class Error : public std::runtime_error {
public:
    Error(innfer_status status, const std::string& message)
        : std::runtime_error(message), status_(status) {}

    /// The C status code (one of INNFER_STATUS_*).
    innfer_status status() const noexcept { return status_; }

    /// The library's message (same as what()).
    std::string message() const { return what(); }

private:
    innfer_status status_;
};

/// The sampling layout of a model (INNFER_LAYOUT_*).
enum class Layout : std::int32_t {
    None = INNFER_LAYOUT_NONE,
    Inn = INNFER_LAYOUT_INN,
    Cinn = INNFER_LAYOUT_CINN,
};

/// "0.1.0": the version of the library actually linked.
inline std::string version() { return innfer_version_string(); }

/// The static text for a status code.
inline std::string status_string(innfer_status s) { return innfer_status_string(s); }

namespace detail {
inline std::string with_status(innfer_status s, const char* msg) {
    std::string m = (msg != nullptr) ? msg : "";
    if (m.empty()) {
        m = innfer_status_string(s);
    }
    return m;
}

/// The message of a failed session creation. The C API records no message for
/// innfer_session_create/_init_static/_size (they have no session to keep it in: see
/// innfer_session_last_error() in innfer.h), so it is told here from the documented causes of
/// each status and the arguments.
inline std::string session_failure(const char* call, innfer_status s, const innfer_model* m,
                                   std::size_t max_batch) {
    std::string text = std::string(call) + "(max_batch = " + std::to_string(max_batch) +
                       "): " + innfer_status_string(s);
    if (s == INNFER_STATUS_NULL_ARGUMENT && m == nullptr) {
        text += ": the Model holds no model (it was moved from)";
    } else if (s == INNFER_STATUS_INVALID_ARGUMENT && max_batch == 0) {
        text += ": max_batch must be at least 1";
    } else if (s == INNFER_STATUS_INVALID_ARGUMENT) {
        text += ": a session of max_batch rows is too large to address";
    } else if (s == INNFER_STATUS_OUT_OF_MEMORY) {
        std::size_t bytes = 0;
        if (innfer_session_size(m, max_batch, &bytes) == INNFER_STATUS_OK) {
            text += ": a session of " + std::to_string(bytes) + " bytes could not be allocated";
        }
    }
    return text;
}

/// The widths of a model (innfer_model_dims()).
struct Dims {
    std::size_t dim = 0, cond_dim = 0, x_dim = 0, y_dim = 0, z_dim = 0;
    std::int32_t layout = INNFER_LAYOUT_NONE;
};

struct ModelFree {
    void operator()(innfer_model* m) const noexcept { innfer_model_free(m); }
};
}  // namespace detail

/// A strided matrix over caller memory: element (r, c) is data[r*rs + c*cs] (element strides).
template <class T>
struct MatrixView {
    T* data = nullptr;
    std::size_t rows = 0, cols = 0;
    std::ptrdiff_t rs = 0, cs = 0;

    /// Contiguous row-major [rows][cols] (C order): rs = cols, cs = 1.
    static MatrixView row_major(T* data, std::size_t rows, std::size_t cols) {
        return MatrixView{data, rows, cols, static_cast<std::ptrdiff_t>(cols), 1};
    }
    /// Contiguous column-major (Fortran order, e.g. Eigen's default, x(rows, cols)):
    /// rs = 1, cs = rows.
    static MatrixView col_major(T* data, std::size_t rows, std::size_t cols) {
        return MatrixView{data, rows, cols, 1, static_cast<std::ptrdiff_t>(rows)};
    }
    /// Arbitrary element strides.
    static MatrixView strided(T* data, std::size_t rows, std::size_t cols, std::ptrdiff_t rs,
                              std::ptrdiff_t cs) {
        return MatrixView{data, rows, cols, rs, cs};
    }

    T& operator()(std::size_t r, std::size_t c) const {
        return data[static_cast<std::ptrdiff_t>(r) * rs + static_cast<std::ptrdiff_t>(c) * cs];
    }

    /// A mutable view converts to a read-only one.
    template <class U = T, class = std::enable_if_t<!std::is_const<U>::value>>
    operator MatrixView<const U>() const {
        return MatrixView<const U>{data, rows, cols, rs, cs};
    }
};

using ConstView = MatrixView<const float>;
using MutView = MatrixView<float>;

/// A loaded model: immutable. Copies share the one loaded C model (a reference count), and so
/// do the Sessions made from it: the C model is freed with the last of them, so neither moving
/// nor destroying a Model object invalidates a Session.
class Model {
public:
#if defined(INNFER_HAS_STD)
    /// Loads a model file (.safetensors in the innfer format).
    explicit Model(const std::string& path) {
        char err[512] = {0};
        innfer_model* m = nullptr;
        innfer_status s = innfer_model_load_file(path.c_str(), &m, err, sizeof err);
        if (s != INNFER_STATUS_OK) {
            throw Error(s, detail::with_status(s, err));
        }
        adopt(m);
    }
#endif

    /// Loads a model from the bytes of a model file (copied; `data` may be freed afterwards).
    static Model from_bytes(const void* data, std::size_t len) {
        char err[512] = {0};
        innfer_model* m = nullptr;
        innfer_status s = innfer_model_load_bytes(static_cast<const std::uint8_t*>(data), len, &m,
                                                  err, sizeof err);
        if (s != INNFER_STATUS_OK) {
            throw Error(s, detail::with_status(s, err));
        }
        Model model;
        model.adopt(m);
        return model;
    }
    static Model from_bytes(const std::vector<std::uint8_t>& bytes) {
        return from_bytes(bytes.data(), bytes.size());
    }

    std::size_t dim() const noexcept { return dims_.dim; }
    std::size_t cond_dim() const noexcept { return dims_.cond_dim; }
    std::size_t x_dim() const noexcept { return dims_.x_dim; }
    std::size_t y_dim() const noexcept { return dims_.y_dim; }
    std::size_t z_dim() const noexcept { return dims_.z_dim; }
    Layout layout() const noexcept { return static_cast<Layout>(dims_.layout); }
    std::size_t block_count() const noexcept { return innfer_model_block_count(m_.get()); }

    /// The C handle, shared by this object's copies and sessions (never free it); nullptr
    /// after a move.
    const innfer_model* get() const noexcept { return m_.get(); }

private:
    friend class Session;  // a moved-from session holds an empty Model
    Model() = default;

    void adopt(innfer_model* m) {
        m_.reset(m, detail::ModelFree{});
        innfer_status s = innfer_model_dims(m, &dims_.dim, &dims_.cond_dim, &dims_.x_dim,
                                            &dims_.y_dim, &dims_.z_dim, &dims_.layout);
        if (s != INNFER_STATUS_OK) {
            throw Error(s, std::string("innfer_model_dims: ") + innfer_status_string(s));
        }
    }

    std::shared_ptr<innfer_model> m_;
    detail::Dims dims_;
};

/// The result of a forward or inverse pass: out is [rows][dim], logdet [rows].
struct PassResult {
    std::vector<float> out;
    std::vector<float> logdet;
};

/// Summaries of n posterior samples per observation (Session::summarize), row-major: mean and
/// stddev are [rows][x_dim], quantile_values [rows][n_quantiles][x_dim]. An invalid row (a
/// condition that is not finite) is NaN everywhere and counted in invalid_rows.
struct Summaries {
    std::vector<float> mean;
    std::vector<float> stddev;
    std::vector<float> quantile_values;
    std::size_t invalid_rows = 0;
};

/// Scratch memory and a random stream for passes of at most max_batch rows. Move-only.
/// After construction no call allocates (except the std::vector convenience overloads).
/// A session holds its own copy of the Model (sharing the C model), so the Model object it was
/// made from may be moved or destroyed while the session lives.
class Session {
public:
    /// A heap session.
    Session(const Model& model, std::size_t max_batch) : model_(model) {
        innfer_status st = innfer_session_create(model_.get(), max_batch, &s_);
        if (st != INNFER_STATUS_OK) {
            throw Error(st, detail::session_failure("innfer_session_create", st, model_.get(),
                                                    max_batch));
        }
    }

    /// Bytes of caller memory a static session needs (handle included).
    static std::size_t required_bytes(const Model& model, std::size_t max_batch) {
        std::size_t bytes = 0;
        innfer_status st = innfer_session_size(model.get(), max_batch, &bytes);
        if (st != INNFER_STATUS_OK) {
            throw Error(st, detail::session_failure("innfer_session_size", st, model.get(),
                                                    max_batch));
        }
        return bytes;
    }

    /// A session living in caller memory (aligned to INNFER_ARENA_ALIGN, at least
    /// required_bytes(model, max_batch) bytes); nothing is allocated. The memory must outlive
    /// the session and stays the caller's.
    static Session in_memory(const Model& model, std::size_t max_batch, void* memory,
                             std::size_t bytes) {
        innfer_session* s = nullptr;
        innfer_status st = innfer_session_init_static(model.get(), max_batch, memory, bytes, &s);
        if (st != INNFER_STATUS_OK) {
            std::string msg =
                detail::session_failure("innfer_session_init_static", st, model.get(), max_batch);
            std::size_t need = 0;
            if (st == INNFER_STATUS_ARENA_TOO_SMALL &&
                innfer_session_size(model.get(), max_batch, &need) == INNFER_STATUS_OK) {
                msg += ": the memory holds " + std::to_string(bytes) + " bytes, the session needs " +
                       std::to_string(need) + " (required_bytes)";
            } else if (st == INNFER_STATUS_ARENA_MISALIGNED) {
                msg += ": the memory's address is " +
                       std::to_string(reinterpret_cast<std::uintptr_t>(memory) %
                                      INNFER_ARENA_ALIGN) +
                       " bytes past a multiple of INNFER_ARENA_ALIGN (" +
                       std::to_string(INNFER_ARENA_ALIGN) + ")";
            } else if (st == INNFER_STATUS_NULL_ARGUMENT && memory == nullptr) {
                msg += ": memory is nullptr";
            }
            throw Error(st, msg);
        }
        return Session(FromHandle{}, model, s);
    }

    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;
    Session(Session&& o) noexcept { *this = std::move(o); }
    Session& operator=(Session&& o) noexcept {
        if (this != &o) {
            innfer_session_free(s_);
            s_ = std::exchange(o.s_, nullptr);
            model_ = std::move(o.model_);
        }
        return *this;
    }
    ~Session() { innfer_session_free(s_); }

    /// The session's model (a copy sharing the C model: valid as long as the session).
    const Model& model() const noexcept { return model_; }
    std::size_t max_batch() const noexcept { return innfer_session_max_batch(s_); }
    innfer_session* get() noexcept { return s_; }

    /// Restarts the random stream: (seed, stream) selects it; a fresh session is (0, 0).
    void reseed(std::uint64_t seed, std::uint64_t stream = 0) {
        check(innfer_session_reseed(s_, seed, stream));
    }

    /// Moves the random stream to `row`: the next sample draws row `row` of (seed, stream).
    /// With n samples per observation, observation j owns rows j*n ... j*n+n-1, so a worker
    /// that handles observations j0... seeks to j0*n (innfer_session_seek() in innfer.h).
    void seek(std::uint64_t row) { check(innfer_session_seek(s_, row)); }

    /// Where the random stream stands: reseed(seed, stream) + seek(next_row) restores it.
    struct RngPosition {
        std::uint64_t seed, stream, next_row;
    };
    RngPosition rng_position() const {
        RngPosition p{0, 0, 0};
        check(innfer_session_rng_position(s_, &p.seed, &p.stream, &p.next_row));
        return p;
    }

#if defined(INNFER_HAS_STD)
    /// Splits each call over `threads` threads (1: the calling thread only); the results do
    /// not depend on it. Starts the session's worker threads (innfer_session_set_threads()).
    void set_threads(std::size_t threads) { check(innfer_session_set_threads(s_, threads)); }
#endif

    // ---- raw pointers (row-major, contiguous; sizes as in innfer.h) ----

    /// n posterior samples for one observation y [y_dim]; x is [n][x_dim].
    void sample(const float* y, std::size_t n, float* x) { check(innfer_sample(s_, y, n, x)); }

    /// n samples for each of n_obs observations y [n_obs][y_dim]; x is [n_obs*n][x_dim].
    void sample_batch(const float* y, std::size_t n_obs, std::size_t n, float* x) {
        check(innfer_sample_batch(s_, y, n_obs, n, x));
    }

    /// The mean, standard deviation (divisor n - 1) and order statistics at `quantiles`
    /// [n_quantiles] (each in [0, 1]) of n samples for each of rows observations y
    /// [rows][y_dim], without the samples: mean and stddev [rows][x_dim], quantile_values
    /// [rows][n_quantiles][x_dim] (nullptr if n_quantiles is 0). Exactly the summaries of the
    /// samples sample_batch() draws from the same stream position (definitions in
    /// innfer_session_summarize(), innfer.h). Returns the number of invalid rows (NaN in all
    /// their outputs).
    std::size_t summarize(const float* y, std::size_t rows, std::size_t n,
                          const float* quantiles, std::size_t n_quantiles, float* mean,
                          float* stddev, float* quantile_values) {
        std::size_t invalid = 0;
        check(innfer_session_summarize(s_, y, rows, n, quantiles, n_quantiles, mean, stddev,
                                       quantile_values, &invalid));
        return invalid;
    }

    /// out = f(x; cond), x and out [rows][dim], cond [rows][cond_dim] (nullptr without a
    /// condition), logdet [rows] or nullptr.
    void forward(const float* x, const float* cond, std::size_t rows, float* out,
                 float* logdet = nullptr) {
        check(innfer_forward(s_, x, cond, rows, out, logdet));
    }

    /// x = f⁻¹(in; cond), shapes as in forward.
    void inverse(const float* in, const float* cond, std::size_t rows, float* x,
                 float* logdet = nullptr) {
        check(innfer_inverse(s_, in, cond, rows, x, logdet));
    }

    // ---- strided views (innfer_*_strided) ----

    /// n samples for each row of y (rows = n_obs, cols = y_dim) into x (rows = n_obs*n,
    /// cols = x_dim).
    void sample(ConstView y, std::size_t n, MutView x) {
        if (x.rows != y.rows * n) {
            throw Error(INNFER_STATUS_BUFFER_SIZE,
                        "sample: x must have y.rows * n rows (" + std::to_string(y.rows * n) +
                            "), has " + std::to_string(x.rows));
        }
        check_cols("y", y.cols, model_.y_dim());
        check_cols("x", x.cols, model_.x_dim());
        check(innfer_sample_strided(s_, y.data, y.rs, y.cs, y.rows, n, x.data, x.rs, x.cs));
    }

    /// forward on views; logdet (contiguous, x.rows elements) may be nullptr.
    void forward(ConstView x, MutView out, float* logdet = nullptr) {
        pass(false, x, nullptr, out, logdet);
    }
    void forward(ConstView x, ConstView cond, MutView out, float* logdet = nullptr) {
        pass(false, x, &cond, out, logdet);
    }
    void inverse(ConstView in, MutView x, float* logdet = nullptr) {
        pass(true, in, nullptr, x, logdet);
    }
    void inverse(ConstView in, ConstView cond, MutView x, float* logdet = nullptr) {
        pass(true, in, &cond, x, logdet);
    }

    // ---- std::vector conveniences (allocate the result) ----

    /// n samples for y (y.size() == y_dim): [n][x_dim] row-major.
    std::vector<float> sample(const std::vector<float>& y, std::size_t n) {
        check_cols("y", y.size(), model_.y_dim());
        std::vector<float> x(n * model_.x_dim());
        sample(y.data(), n, x.data());
        return x;
    }

    /// n samples for each observation in ys ([n_obs][y_dim] row-major): [n_obs*n][x_dim].
    std::vector<float> sample_batch(const std::vector<float>& ys, std::size_t n) {
        const std::size_t n_obs = observations(ys, "sample_batch");
        std::vector<float> x(n_obs * n * model_.x_dim());
        sample_batch(ys.data(), n_obs, n, x.data());
        return x;
    }

    /// Summaries of n samples for each observation in ys ([rows][y_dim] row-major) at the
    /// given quantiles (see the pointer overload).
    Summaries summarize(const std::vector<float>& ys, std::size_t n,
                        const std::vector<float>& quantiles = {}) {
        const std::size_t rows = observations(ys, "summarize");
        const std::size_t xd = model_.x_dim(), nq = quantiles.size();
        Summaries r{std::vector<float>(rows * xd), std::vector<float>(rows * xd),
                    std::vector<float>(rows * nq * xd), 0};
        r.invalid_rows = summarize(ys.data(), rows, n, quantiles.data(), nq, r.mean.data(),
                                   r.stddev.data(), r.quantile_values.data());
        return r;
    }

    /// Forward pass over any number of rows (x.size() a multiple of dim; cond empty or
    /// [rows][cond_dim]); runs in chunks of max_batch.
    PassResult forward(const std::vector<float>& x, const std::vector<float>& cond = {}) {
        return pass_vec(false, x, cond);
    }
    /// Inverse pass, as forward.
    PassResult inverse(const std::vector<float>& in, const std::vector<float>& cond = {}) {
        return pass_vec(true, in, cond);
    }

private:
    // A tag, so that no argument of the public constructor (Session(model, 0) included) can
    // select this one.
    struct FromHandle {};
    Session(FromHandle, const Model& model, innfer_session* s) : s_(s), model_(model) {}

    void check(innfer_status st) const {
        if (st != INNFER_STATUS_OK) {
            throw Error(st, detail::with_status(st, innfer_session_last_error(s_)));
        }
    }

    /// The number of observations in ys ([rows][y_dim] row-major).
    std::size_t observations(const std::vector<float>& ys, const char* what) const {
        const std::size_t yd = model_.y_dim();
        if (model_.layout() == Layout::None) {
            throw Error(INNFER_STATUS_NO_LAYOUT, std::string(what) + ": " +
                                                     innfer_status_string(INNFER_STATUS_NO_LAYOUT));
        }
        if (yd == 0 || ys.size() % yd != 0) {
            throw Error(INNFER_STATUS_BUFFER_SIZE, std::string(what) +
                                                       ": ys.size() is not a multiple of y_dim = " +
                                                       std::to_string(yd));
        }
        return ys.size() / yd;
    }

    static void check_cols(const char* what, std::size_t got, std::size_t want) {
        if (got != want) {
            throw Error(INNFER_STATUS_BUFFER_SIZE, std::string(what) + ": expected " +
                                                       std::to_string(want) + " columns, got " +
                                                       std::to_string(got));
        }
    }

    void pass(bool rev, ConstView in, const ConstView* cond, MutView out, float* logdet) {
        const char* name = rev ? "inverse" : "forward";
        check_cols(name, in.cols, model_.dim());
        check_cols(name, out.cols, model_.dim());
        if (out.rows != in.rows || (cond != nullptr && cond->rows != in.rows)) {
            throw Error(INNFER_STATUS_BUFFER_SIZE,
                        std::string(name) + ": all views must have the same number of rows");
        }
        if (cond != nullptr) {
            check_cols("cond", cond->cols, model_.cond_dim());
        }
        const float* c = cond ? cond->data : nullptr;
        std::ptrdiff_t crs = cond ? cond->rs : 0, ccs = cond ? cond->cs : 0;
        auto f = rev ? &innfer_inverse_strided : &innfer_forward_strided;
        check(f(s_, in.data, in.rs, in.cs, c, crs, ccs, in.rows, out.data, out.rs, out.cs,
                logdet));
    }

    PassResult pass_vec(bool rev, const std::vector<float>& in, const std::vector<float>& cond) {
        const std::size_t d = model_.dim(), cd = model_.cond_dim();
        if (d == 0 || in.size() % d != 0) {
            throw Error(INNFER_STATUS_BUFFER_SIZE,
                        "input size is not a multiple of dim = " + std::to_string(d));
        }
        const std::size_t rows = in.size() / d;
        if (!cond.empty() && cond.size() != rows * cd) {
            throw Error(INNFER_STATUS_BUFFER_SIZE,
                        "cond must have rows * cond_dim = " + std::to_string(rows * cd) +
                            " elements, has " + std::to_string(cond.size()));
        }
        PassResult r{std::vector<float>(in.size()), std::vector<float>(rows)};
        const std::size_t mb = max_batch();
        for (std::size_t r0 = 0; r0 < rows; r0 += mb) {
            const std::size_t m = (rows - r0 < mb) ? rows - r0 : mb;
            const float* c = cond.empty() ? nullptr : cond.data() + r0 * cd;
            if (rev) {
                inverse(in.data() + r0 * d, c, m, r.out.data() + r0 * d, r.logdet.data() + r0);
            } else {
                forward(in.data() + r0 * d, c, m, r.out.data() + r0 * d, r.logdet.data() + r0);
            }
        }
        return r;
    }

    innfer_session* s_ = nullptr;
    Model model_;
};

}  // namespace innfer

#endif  // INNFER_HPP
