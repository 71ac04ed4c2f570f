// Checks of bindings/cpp/innfer.hpp beyond what examples/cpp/sample.cpp uses; run by
// tests/bindings_examples.rs (cpp_header_api) as `cpp_api FIXTURES_DIR`.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "innfer.hpp"

static int failures = 0;

// The summaries' definitions (innfer_session_summarize() in innfer.h) applied to samples
// [rows*n][xd] as sample_batch() draws them.
static innfer::Summaries reduce(const std::vector<float>& x, std::size_t rows, std::size_t n,
                                std::size_t xd, const std::vector<float>& quantiles) {
    const std::size_t nq = quantiles.size();
    innfer::Summaries s{std::vector<float>(rows * xd), std::vector<float>(rows * xd),
                        std::vector<float>(rows * nq * xd), 0};
    for (std::size_t j = 0; j < rows; j++) {
        for (std::size_t c = 0; c < xd; c++) {
            std::vector<float> col(n);
            for (std::size_t k = 0; k < n; k++) col[k] = x[(j * n + k) * xd + c];
            double sum = 0, squares = 0;
            for (float v : col) sum += v;
            const double mean = sum / static_cast<double>(n);
            for (float v : col) squares += (v - mean) * (v - mean);
            s.mean[j * xd + c] = static_cast<float>(mean);
            s.stddev[j * xd + c] =
                n > 1 ? static_cast<float>(std::sqrt(squares / static_cast<double>(n - 1))) : 0.0f;
            std::sort(col.begin(), col.end());
            for (std::size_t qi = 0; qi < nq; qi++) {
                // k = max(1, ceil(q n)), a product within q's float rounding above a whole
                // number counting as that number.
                const double t = static_cast<double>(quantiles[qi]) * static_cast<double>(n);
                double k = t - std::floor(t) <= t * std::ldexp(1.0, -24) ? std::floor(t)
                                                                           : std::ceil(t);
                k = k < 1 ? 1 : (k > static_cast<double>(n) ? static_cast<double>(n) : k);
                s.quantile_values[(j * nq + qi) * xd + c] = col[static_cast<std::size_t>(k) - 1];
            }
        }
    }
    return s;
}

static bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}
#define CHECK(cond)                                                      \
    do {                                                                 \
        if (!(cond)) {                                                   \
            std::printf("FAIL line %d: %s\n", __LINE__, #cond);          \
            failures++;                                                  \
        }                                                                \
    } while (0)

template <class F>
static innfer_status status_of(F&& f) {
    try {
        f();
    } catch (const innfer::Error& e) {
        CHECK(std::string(e.what()).size() > 0);
        return e.status();
    }
    return INNFER_STATUS_OK;
}

// The message of the innfer::Error f throws ("" if it throws none).
template <class F>
static std::string message_of(F&& f) {
    try {
        f();
    } catch (const innfer::Error& e) {
        return e.what();
    }
    return "";
}

static bool contains(const std::string& text, const char* part) {
    return text.find(part) != std::string::npos;
}

int main(int argc, char** argv) {
    if (argc != 2) {
        std::printf("usage: cpp_api FIXTURES_DIR\n");
        return 2;
    }
    const std::string fixtures = argv[1];
    const std::string cinn_path = fixtures + "/pypi_cinn_stats/model.safetensors";

    CHECK(innfer::version() == "0.1.0");
    CHECK(innfer_abi_version() == INNFER_ABI_VERSION);

    innfer::Model model(cinn_path);
    CHECK(model.dim() == 4 && model.cond_dim() == 2 && model.x_dim() == 4 && model.y_dim() == 2 &&
          model.z_dim() == 4);
    CHECK(model.layout() == innfer::Layout::Cinn);
    CHECK(model.block_count() == 4);

    // Model from bytes; move semantics.
    std::ifstream f(cinn_path, std::ios::binary);
    std::vector<std::uint8_t> bytes((std::istreambuf_iterator<char>(f)),
                                    std::istreambuf_iterator<char>());
    innfer::Model from_bytes = innfer::Model::from_bytes(bytes);
    innfer::Model moved = std::move(from_bytes);
    CHECK(from_bytes.get() == nullptr);
    CHECK(moved.dim() == 4);

    const std::vector<float> y = {1.5f, -0.25f};
    const std::size_t n = 600;
    innfer::Session heap(model, 256);
    std::vector<float> ref = heap.sample(y, n);
    CHECK(ref.size() == n * 4);

    // Same numbers from: a model loaded from bytes, a static session, strided column-major
    // output, raw pointers after reseed, a moved session.
    {
        innfer::Session s(moved, 256);
        CHECK(s.sample(y, n) == ref);
    }
    {
        const std::size_t bytes_needed = innfer::Session::required_bytes(model, 256);
        CHECK(bytes_needed > 0);
        std::vector<unsigned char> mem(bytes_needed + INNFER_ARENA_ALIGN);
        void* p = mem.data();
        std::size_t space = mem.size();
        void* aligned = std::align(INNFER_ARENA_ALIGN, bytes_needed, p, space);
        CHECK(aligned != nullptr);
        innfer::Session s = innfer::Session::in_memory(model, 256, aligned, bytes_needed);
        CHECK(s.max_batch() == 256);
        CHECK(s.sample(y, n) == ref);
        // Too small and misaligned memory are reported, with what was given and what is needed.
        CHECK(status_of([&] { innfer::Session::in_memory(model, 256, aligned, bytes_needed / 2); }) ==
              INNFER_STATUS_ARENA_TOO_SMALL);
        const std::string small = message_of(
            [&] { innfer::Session::in_memory(model, 256, aligned, bytes_needed / 2); });
        CHECK(contains(small, std::to_string(bytes_needed / 2).c_str()) &&
              contains(small, std::to_string(bytes_needed).c_str()));
        CHECK(status_of([&] {
                  innfer::Session::in_memory(model, 256, static_cast<char*>(aligned) + 4,
                                             bytes_needed);
              }) == INNFER_STATUS_ARENA_MISALIGNED);
        CHECK(contains(message_of([&] {
                           innfer::Session::in_memory(model, 256, static_cast<char*>(aligned) + 4,
                                                      bytes_needed);
                       }),
                       "4 bytes past a multiple of INNFER_ARENA_ALIGN"));
        std::printf("in-memory error as expected: %s\n", small.c_str());
    }
    // Session(model, 0) compiles (no constructor but the public one takes (Model, integer)) and
    // fails with a message naming max_batch; so does a session of a moved-from Model.
    {
        const std::string zero = message_of([&] { innfer::Session s(model, 0); });
        CHECK(status_of([&] { innfer::Session s(model, 0); }) == INNFER_STATUS_INVALID_ARGUMENT);
        CHECK(contains(zero, "max_batch = 0") && contains(zero, "at least 1"));
        std::printf("create error as expected: %s\n", zero.c_str());
        CHECK(status_of([&] { innfer::Session s(from_bytes, 8); }) == INNFER_STATUS_NULL_ARGUMENT);
        CHECK(contains(message_of([&] { innfer::Session s(from_bytes, 8); }), "moved from"));
        CHECK(status_of([&] { innfer::Session::required_bytes(model, 0); }) ==
              INNFER_STATUS_INVALID_ARGUMENT);
    }
    // A session does not depend on the Model object it was made from: the models of a
    // std::vector that reallocates, then is cleared, and a temporary Model, still sample the
    // same bits (under AddressSanitizer: no use after free; scripts/sanitize-bindings.sh).
    {
        std::vector<innfer::Model> models;
        models.push_back(innfer::Model(cinn_path));
        innfer::Session s(models[0], 64);
        const innfer_model* handle = models[0].get();
        for (int i = 0; i < 16; i++) {
            models.push_back(innfer::Model::from_bytes(bytes));
        }
        CHECK(s.sample(y, n) == ref);
        CHECK(s.model().get() == handle);
        models.clear();
        s.reseed(0, 0);
        CHECK(s.sample(y, n) == ref);
        CHECK(s.model().x_dim() == 4);
        innfer::Session from_temporary(innfer::Model(cinn_path), 64);
        CHECK(from_temporary.sample(y, n) == ref);
        // Copies share the C model.
        innfer::Model copy = model;
        CHECK(copy.get() == model.get() && copy.dim() == model.dim());
    }
    {
        innfer::Session s(model, 100);
        std::vector<float> colmajor(n * 4);  // x(n, 4) Fortran order
        s.sample(innfer::ConstView::row_major(y.data(), 1, 2), n,
                 innfer::MutView::col_major(colmajor.data(), n, 4));
        bool same = true;
        for (std::size_t i = 0; i < n; i++)
            for (std::size_t j = 0; j < 4; j++) same = same && colmajor[j * n + i] == ref[i * 4 + j];
        CHECK(same);
        s.reseed(0, 0);
        std::vector<float> raw(n * 4);
        s.sample(y.data(), n, raw.data());
        CHECK(raw == ref);
        innfer::Session t = std::move(s);
        t.reseed(0, 0);
        CHECK(t.sample(y, n) == ref);
        t.reseed(1, 0);
        CHECK(t.sample(y, n) != ref);
    }
    // sample_batch = successive samples.
    {
        innfer::Session a(model, 64), b(model, 64);
        std::vector<float> ys = {1.5f, -0.25f, 0.0f, 2.0f};
        std::vector<float> batch = a.sample_batch(ys, 50);
        std::vector<float> one = b.sample(std::vector<float>{1.5f, -0.25f}, 50);
        std::vector<float> two = b.sample(std::vector<float>{0.0f, 2.0f}, 50);
        one.insert(one.end(), two.begin(), two.end());
        CHECK(batch == one);
    }
    // The stream contract: observations 2 and 3 drawn alone, by a session seeked to row 2*n
    // and running on two threads (calls of 2*n rows are long enough for them), are the bits of
    // one call over all four.
    {
        const std::size_t per = 4000;
        std::vector<float> ys = {1.5f, -0.25f, 0.0f, 2.0f, -1.0f, 0.5f, 0.75f, 0.75f};
        innfer::Session one(model, 8192), part(model, 8192);
        one.reseed(9, 4);
        std::vector<float> all = one.sample_batch(ys, per);
        CHECK(one.rng_position().next_row == 4 * per);
        part.set_threads(2);
        part.reseed(9, 4);
        part.seek(2 * per);
        innfer::Session::RngPosition at = part.rng_position();
        CHECK(at.seed == 9 && at.stream == 4 && at.next_row == 2 * per);
        std::vector<float> tail = part.sample_batch(std::vector<float>(ys.begin() + 4, ys.end()), per);
        CHECK(std::vector<float>(all.begin() + 2 * per * 4, all.end()) == tail);
        CHECK(status_of([&] { part.set_threads(0); }) == INNFER_STATUS_INVALID_ARGUMENT);
    }
    // summarize: the definitions applied to sample_batch's samples, bit for bit; in one pass
    // and in passes (n > max_batch); raw pointers; an invalid row; errors.
    {
        const std::vector<float> ys = {1.5f, -0.25f, 0.0f, 2.0f, -1.0f, 0.5f};
        const std::vector<float> qs = {0.0f, 0.1f, 0.5f, 0.9f, 1.0f};
        const std::size_t per = 300;
        innfer::Session a(model, 1024), b(model, 64);
        a.reseed(3, 1);
        const innfer::Summaries want = reduce(a.sample_batch(ys, per), 3, per, 4, qs);
        for (innfer::Session* s : {&a, &b}) {
            s->reseed(3, 1);
            innfer::Summaries got = s->summarize(ys, per, qs);
            CHECK(got.invalid_rows == 0);
            CHECK(same_bits(got.mean, want.mean) && same_bits(got.stddev, want.stddev) &&
                  same_bits(got.quantile_values, want.quantile_values));
        }
        std::vector<float> bad = ys, mean(12), sd(12);
        bad[3] = std::nanf("");
        b.reseed(3, 1);
        CHECK(b.summarize(bad.data(), 3, per, nullptr, 0, mean.data(), sd.data(), nullptr) == 1);
        CHECK(std::isnan(mean[4]) && std::isnan(sd[7]) && mean[0] == want.mean[0] &&
              sd[8] == want.stddev[8]);
        CHECK(b.summarize(ys, per).quantile_values.empty());
        CHECK(status_of([&] { b.summarize(ys, 0, qs); }) == INNFER_STATUS_INVALID_ARGUMENT);
        CHECK(status_of([&] { b.summarize(ys, 5, {0.5f, 1.5f}); }) ==
              INNFER_STATUS_INVALID_ARGUMENT);
        CHECK(status_of([&] { b.summarize(std::vector<float>(3), 5); }) ==
              INNFER_STATUS_BUFFER_SIZE);
    }
    // forward/inverse: vectors (chunked), views, raw pointers agree; inverse undoes forward.
    {
        innfer::Session s(model, 32);
        const std::size_t rows = 100;
        std::vector<float> x(rows * 4), c(rows * 2);
        for (std::size_t i = 0; i < x.size(); i++) x[i] = static_cast<float>(i % 17) * 0.3f - 2.0f;
        for (std::size_t i = 0; i < c.size(); i++) c[i] = static_cast<float>(i % 5) * 0.5f - 1.0f;
        innfer::PassResult fw = s.forward(x, c);
        CHECK(fw.out.size() == x.size() && fw.logdet.size() == rows);
        innfer::PassResult bw = s.inverse(fw.out, c);
        float worst = 0;
        for (std::size_t i = 0; i < x.size(); i++) {
            float d = std::abs(bw.out[i] - x[i]) / (1.0f + std::abs(x[i]));
            worst = d > worst ? d : worst;
        }
        CHECK(worst < 1e-4f);
        // first 32 rows in column-major views = the vector result
        const std::size_t m = 32;
        std::vector<float> xc(m * 4), cc(m * 2), oc(m * 4), ld(m);
        for (std::size_t i = 0; i < m; i++) {
            for (std::size_t j = 0; j < 4; j++) xc[j * m + i] = x[i * 4 + j];
            for (std::size_t j = 0; j < 2; j++) cc[j * m + i] = c[i * 2 + j];
        }
        s.forward(innfer::ConstView::col_major(xc.data(), m, 4),
                  innfer::ConstView::col_major(cc.data(), m, 2),
                  innfer::MutView::col_major(oc.data(), m, 4), ld.data());
        bool same = true;
        for (std::size_t i = 0; i < m; i++) {
            for (std::size_t j = 0; j < 4; j++) same = same && oc[j * m + i] == fw.out[i * 4 + j];
            same = same && ld[i] == fw.logdet[i];
        }
        CHECK(same);
        std::vector<float> raw(m * 4);
        s.forward(x.data(), c.data(), m, raw.data());
        CHECK(std::vector<float>(fw.out.begin(), fw.out.begin() + m * 4) == raw);
        // errors
        CHECK(status_of([&] { s.forward(x.data(), c.data(), 33, raw.data()); }) ==
              INNFER_STATUS_BATCH_TOO_LARGE);
        CHECK(status_of([&] { s.forward(x.data(), nullptr, 4, raw.data()); }) != INNFER_STATUS_OK);
        CHECK(status_of([&] { s.sample(std::vector<float>{1.0f}, 10); }) ==
              INNFER_STATUS_BUFFER_SIZE);
        CHECK(status_of([&] { s.forward(std::vector<float>(7), c); }) == INNFER_STATUS_BUFFER_SIZE);
        // still usable
        s.reseed(0, 0);
        CHECK(s.sample(y, n) == ref);
    }
    // Load errors carry the status and the loader's message.
    try {
        innfer::Model missing(fixtures + "/does_not_exist.safetensors");
        CHECK(false);
    } catch (const innfer::Error& e) {
        CHECK(e.status() == INNFER_STATUS_IO);
        CHECK(std::string(e.what()).size() > 0);
        std::printf("load error as expected: %s\n", e.what());
    }
    {
        const std::uint8_t junk[16] = {8, 0, 0, 0, 0, 0, 0, 0, '{', '}', 0, 0, 0, 0, 0, 0};
        CHECK(status_of([&] { innfer::Model::from_bytes(junk, sizeof junk); }) != INNFER_STATUS_OK);
    }
    // Sampling a model without a layout.
    {
        innfer::Model plain(fixtures + "/pypi_rnvp_tanh/model.safetensors");
        CHECK(plain.layout() == innfer::Layout::None);
        innfer::Session s(plain, 8);
        float dummy_y[1] = {0}, dummy_x[1] = {0};
        try {
            s.sample(dummy_y, 1, dummy_x);
            CHECK(false);
        } catch (const innfer::Error& e) {
            CHECK(e.status() == INNFER_STATUS_NO_LAYOUT);
            std::printf("sample error as expected: %s\n", e.what());
        }
        CHECK(status_of([&] { s.summarize(std::vector<float>{}, 1); }) ==
              INNFER_STATUS_NO_LAYOUT);
    }

    if (failures != 0) {
        std::printf("cpp_api: %d check(s) failed\n", failures);
        return 1;
    }
    std::printf("cpp_api: all checks passed\n");
    return 0;
}
