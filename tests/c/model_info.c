/* Prints what the C API says about a model beside its dimensions, for tests/c_api.rs to
 * compare with the Rust API and the file: the parameter count, then for x and y whether they
 * are standardised and the mean and std vectors (%.9g: every float exactly).
 * usage: model_info MODEL */
#include "common.h"

static void variable(const innfer_model *m, int32_t which, const char *name, size_t len) {
    float mean[64], sd[64];
    int32_t on;
    size_t i;
    CHECK(len <= 64);
    CHECK_OK(innfer_model_standardization(m, which, &on, mean, sd, len));
    printf("%s %d", name, (int)on);
    for (i = 0; i < len; i++) printf(" %.9g", (double)mean[i]);
    for (i = 0; i < len; i++) printf(" %.9g", (double)sd[i]);
    printf("\n");
}

int main(int argc, char **argv) {
    innfer_model *m;
    size_t xd, yd;
    CHECK(argc == 2);
    m = load(argv[1]);
    CHECK_OK(innfer_model_dims(m, NULL, NULL, &xd, &yd, NULL, NULL));
    printf("parameters %zu\n", innfer_model_parameter_count(m));
    variable(m, INNFER_VARIABLE_X, "x", xd);
    variable(m, INNFER_VARIABLE_Y, "y", yd);
    innfer_model_free(m);
    return 0;
}
