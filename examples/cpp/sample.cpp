// sample.cpp: posterior samples from an innfer model, from C++ (bindings/cpp/innfer.hpp).
//
//   usage: sample MODEL Y [N]
//     MODEL  a model file (.safetensors in the innfer format) with a sampling layout
//     Y      the observation, comma-separated, y_dim values (e.g. 1.5,0)
//     N      number of samples (default 1000)
//   Draws N samples of x with seed 0 and prints the mean and standard deviation of each
//   parameter. With INNFER_EXAMPLE_DUMP=FILE it also writes the raw samples there
//   (float32, native byte order, [N][x_dim] row-major).
//
// Build with CMake against an installed innfer (scripts/install.sh PREFIX):
//   cmake -S examples/cpp -B build-cpp -DCMAKE_PREFIX_PATH=PREFIX && cmake --build build-cpp
// or directly (from the repository root, after `cargo build --release`):
//   c++ -std=c++17 -O2 -Iinclude -Ibindings/cpp examples/cpp/sample.cpp
//       target/release/libinnfer.a -lpthread -ldl -lm -o sample   (one line)
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "innfer.hpp"

static std::vector<float> parse_floats(const std::string& text) {
    std::vector<float> out;
    std::size_t start = 0;
    for (;;) {
        std::size_t comma = text.find(',', start);
        std::string item = text.substr(start, comma == std::string::npos ? std::string::npos
                                                                         : comma - start);
        char* end = nullptr;
        float v = std::strtof(item.c_str(), &end);
        if (item.empty() || *end != '\0') {
            throw std::invalid_argument("not a number: '" + item + "'");
        }
        out.push_back(v);
        if (comma == std::string::npos) break;
        start = comma + 1;
    }
    return out;
}

int main(int argc, char** argv) {
    if (argc < 3 || argc > 4) {
        std::cerr << "usage: " << argv[0] << " MODEL Y [N]   (Y comma-separated, e.g. 1.5,0)\n";
        return 2;
    }
    std::size_t n = 1000;
    std::vector<float> y;
    try {
        if (argc == 4) {
            long v = std::stol(argv[3]);
            if (v <= 0) throw std::invalid_argument("N");
            n = static_cast<std::size_t>(v);
        }
        y = parse_floats(argv[2]);
    } catch (const std::exception&) {
        std::cerr << "usage: " << argv[0] << " MODEL Y [N]   (Y comma-separated, e.g. 1.5,0)\n";
        return 2;
    }

    try {
        innfer::Model model(argv[1]);
        if (model.layout() == innfer::Layout::None) {
            std::cerr << argv[1] << " has no sampling layout\n";
            return 1;
        }
        if (y.size() != model.y_dim()) {
            std::cerr << "Y must have " << model.y_dim() << " values, got " << y.size() << "\n";
            return 2;
        }
        innfer::Session session(model, 256);
        session.reseed(0, 0);
        const std::size_t x_dim = model.x_dim();
        std::vector<float> x = session.sample(y, n);  // [n][x_dim]

        if (const char* dump = std::getenv("INNFER_EXAMPLE_DUMP"); dump && *dump) {
            std::ofstream f(dump, std::ios::binary);
            f.write(reinterpret_cast<const char*>(x.data()),
                    static_cast<std::streamsize>(x.size() * sizeof(float)));
            if (!f) {
                std::cerr << "cannot write " << dump << "\n";
                return 1;
            }
        }

        // Column j of the [n][x_dim] result, seen through a strided view.
        auto xs = innfer::ConstView::row_major(x.data(), n, x_dim);
        std::printf("%zu samples, seed 0, x_dim %zu\n", n, x_dim);
        std::printf("param %14s %14s\n", "mean", "std");
        for (std::size_t j = 0; j < x_dim; j++) {
            double sum = 0.0, sq = 0.0;
            for (std::size_t i = 0; i < n; i++) sum += xs(i, j);
            const double mean = sum / static_cast<double>(n);
            for (std::size_t i = 0; i < n; i++) {
                const double d = xs(i, j) - mean;
                sq += d * d;
            }
            const double sd = n > 1 ? std::sqrt(sq / static_cast<double>(n - 1)) : 0.0;
            std::printf("%5zu %14.6f %14.6f\n", j, mean, sd);
        }
    } catch (const innfer::Error& e) {
        std::cerr << "innfer error " << e.status() << " (" << innfer::status_string(e.status())
                  << "): " << e.what() << "\n";
        return 1;
    }
    return 0;
}
