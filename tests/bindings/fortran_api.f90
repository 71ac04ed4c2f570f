! Checks of bindings/fortran/innfer.f90 beyond what examples/fortran/sample.f90 uses; run by
! tests/bindings_examples.rs (fortran_module_api) as `fortran_api FIXTURES_DIR`.
program fortran_api
  use, intrinsic :: iso_c_binding
  use, intrinsic :: ieee_arithmetic, only: ieee_value, ieee_quiet_nan, ieee_is_nan
  use innfer
  implicit none
  character(len=4096) :: fixtures
  character(len=256) :: errmsg
  type(c_ptr) :: model, session, plain, psession, whole, part, from_bytes
  integer(c_int8_t), allocatable :: bytes(:)
  integer :: unit, nbytes
  integer(c_int32_t) :: st
  integer(c_int64_t) :: seed, stream, next_row
  integer, parameter :: per = 4000
  real(c_float), allocatable :: xall(:, :), xpart(:, :)
  integer :: failures, dim, cond_dim, x_dim, y_dim, z_dim, layout, i, j
  integer, parameter :: rows = 40
  real(c_float) :: x(4, rows), c(2, rows), z(4, rows), back(4, rows), ld(rows), ldi(rows)
  real(c_float) :: xs(4, 10), xb(4, 20), ys(2, 2), xr(10, 4)
  real(c_float) :: worst

  failures = 0
  call get_command_argument(1, fixtures)

  call check(innfer_abi_version() == INNFER_HEADER_ABI_VERSION, 'abi version')
  call check(innfer_version() == '0.1.0', 'version')
  call check(innfer_status_message(INNFER_STATUS_OK) /= '', 'status message')

  call innfer_load(trim(fixtures)//'/does_not_exist.safetensors', model, st, errmsg)
  call check(st == INNFER_STATUS_IO, 'missing file: IO')
  call check(.not. c_associated(model), 'missing file: null handle')
  call check(len_trim(errmsg) > 0, 'missing file: message')
  print '(a)', 'load error as expected: '//trim(errmsg)

  call innfer_load(trim(fixtures)//'/pypi_cinn_stats/model.safetensors', model, st, errmsg)
  call check(st == INNFER_STATUS_OK .and. errmsg == '', 'load')
  call innfer_dims_f(model, st, dim, cond_dim, x_dim, y_dim, z_dim, layout)
  call check(st == INNFER_STATUS_OK, 'dims status')
  call check(dim == 4 .and. cond_dim == 2 .and. x_dim == 4 .and. y_dim == 2 .and. z_dim == 4, &
             'dims')
  call check(layout == INNFER_LAYOUT_CINN, 'layout')
  call check(innfer_model_block_count(model) == 4_c_size_t, 'block count')

  call innfer_session_create_f(model, rows, session, st)
  call check(st == INNFER_STATUS_OK, 'session')
  call check(innfer_session_max_batch(session) == int(rows, c_size_t), 'max batch')
  call check(c_associated(innfer_session_model(session), model), 'session model')

  ! forward then inverse gives x back
  do i = 1, rows
    do j = 1, 4
      x(j, i) = real(mod(i * 7 + j * 3, 17), c_float) * 0.3_c_float - 2.0_c_float
    end do
    c(1, i) = real(mod(i, 5), c_float) * 0.5_c_float - 1.0_c_float
    c(2, i) = real(mod(i, 3), c_float) - 1.0_c_float
  end do
  call innfer_forward_f(session, x, z, st, cond=c, logdet=ld)
  call check(st == INNFER_STATUS_OK, 'forward')
  call innfer_inverse_f(session, z, back, st, cond=c, logdet=ldi)
  call check(st == INNFER_STATUS_OK, 'inverse')
  worst = maxval(abs(back - x) / (1.0_c_float + abs(x)))
  call check(worst < 1.0e-4_c_float, 'inverse(forward(x)) = x')
  call check(maxval(abs(ld + ldi)) < 1.0e-3_c_float, 'logdets cancel')
  ! without cond: an error with a message from the session
  call innfer_forward_f(session, x, z, st)
  call check(st /= INNFER_STATUS_OK, 'forward without cond fails')
  call check(innfer_session_message(session) /= '', 'session message')
  print '(a)', 'forward error as expected: '//innfer_session_message(session)
  ! more rows than max_batch
  call innfer_session_free(session)
  call innfer_session_create_f(model, rows / 2, session, st)
  call innfer_forward_f(session, x, z, st, cond=c)
  call check(st == INNFER_STATUS_BATCH_TOO_LARGE, 'batch too large')

  ! sampling: wrapper = thin call; batch = successive; strided column-major = row-major
  st = innfer_session_reseed(session, 3_c_int64_t, 1_c_int64_t)
  call innfer_sample_f(session, [1.5_c_float, -0.25_c_float], 10, xs, st)
  call check(st == INNFER_STATUS_OK, 'sample')
  ys(:, 1) = [1.5_c_float, -0.25_c_float]
  ys(:, 2) = [0.0_c_float, 2.0_c_float]
  st = innfer_session_reseed(session, 3_c_int64_t, 1_c_int64_t)
  call innfer_sample_batch_f(session, ys, 10, xb, st)
  call check(st == INNFER_STATUS_OK, 'sample batch')
  call check(same_bits(xb(:, 1:10), xs), 'sample batch = sample')
  st = innfer_session_reseed(session, 3_c_int64_t, 1_c_int64_t)
  st = innfer_sample_strided(session, ys, 2_innfer_ptrdiff_t, 1_innfer_ptrdiff_t, 1_c_size_t, &
                             10_c_size_t, xr, 1_innfer_ptrdiff_t, 10_innfer_ptrdiff_t)
  call check(st == INNFER_STATUS_OK, 'sample strided')
  call check(same_bits(transpose(xr), xs), 'strided x(n, x_dim) = x(x_dim, n) transposed')
  call innfer_sample_f(session, ys(:, 1), 11, xs, st)
  call check(st == INNFER_STATUS_BUFFER_SIZE, 'sample into too small x')

  call extents(session)
  call static_sessions(model, xs)

  ! The stream contract: observation 2 drawn alone, by a session seeked to its first sample
  ! and running on two threads (per = 4000 rows: long enough for them), is the bits of one
  ! call over both observations.
  allocate (xall(4, 2 * per), xpart(4, per))
  call innfer_session_create_f(model, 8192, whole, st)
  call innfer_session_create_f(model, 8192, part, st)
  st = innfer_session_reseed(whole, 11_c_int64_t, 2_c_int64_t)
  call innfer_sample_batch_f(whole, ys, per, xall, st)
  call check(st == INNFER_STATUS_OK, 'sample batch, whole run')
  call innfer_session_set_threads_f(part, 2, st)
  call check(st == INNFER_STATUS_OK, 'two threads')
  st = innfer_session_reseed(part, 11_c_int64_t, 2_c_int64_t)
  call innfer_session_seek_observation_f(part, 2_c_int64_t, per, st)
  call check(st == INNFER_STATUS_OK, 'seek to observation 2')
  st = innfer_session_rng_position(part, seed, stream, next_row)
  call check(st == INNFER_STATUS_OK .and. seed == 11 .and. stream == 2 .and. &
             next_row == per, 'position after the seek')
  call innfer_sample_f(part, ys(:, 2), per, xpart, st)
  call check(st == INNFER_STATUS_OK, 'sample observation 2')
  call check(same_bits(xpart, xall(:, per + 1:)), 'observation 2 alone = in one call')
  st = innfer_session_seek(part, int(per, c_int64_t))
  call innfer_sample_f(part, ys(:, 2), per, xpart, st)
  call check(same_bits(xpart, xall(:, per + 1:)), 'seek by row = seek by observation')
  call innfer_session_set_threads_f(part, 0, st)
  call check(st == INNFER_STATUS_INVALID_ARGUMENT, 'zero threads')
  call innfer_session_seek_observation_f(part, 0_c_int64_t, per, st)
  call check(st == INNFER_STATUS_INVALID_ARGUMENT, 'observations count from 1')
  call innfer_session_free(part)

  ! A model loaded from bytes (as an MPI rank gets them) samples the same bits.
  open (newunit=unit, file=trim(fixtures)//'/pypi_cinn_stats/model.safetensors', &
        access='stream', form='unformatted', status='old', action='read')
  inquire (unit=unit, size=nbytes)
  allocate (bytes(nbytes))
  read (unit) bytes
  close (unit)
  call innfer_load_bytes(bytes, from_bytes, st, errmsg)
  call check(st == INNFER_STATUS_OK .and. errmsg == '', 'load from bytes')
  call innfer_session_create_f(from_bytes, 8192, part, st)
  st = innfer_session_reseed(part, 11_c_int64_t, 2_c_int64_t)
  call innfer_sample_batch_f(part, ys, per, xall, st)
  st = innfer_session_reseed(whole, 11_c_int64_t, 2_c_int64_t)
  call innfer_session_seek_observation_f(whole, 2_c_int64_t, per, st)
  call innfer_sample_f(whole, ys(:, 2), per, xpart, st)
  call check(same_bits(xpart, xall(:, per + 1:)), 'from bytes = from the file')
  call innfer_session_free(part)
  call innfer_model_free(from_bytes)
  bytes(9:16) = int(ichar('X'), c_int8_t)
  call innfer_load_bytes(bytes, from_bytes, st, errmsg)
  call check(st /= INNFER_STATUS_OK .and. .not. c_associated(from_bytes), 'corrupt bytes fail')
  call check(index(errmsg, 'innfer_model_load_bytes') > 0, 'corrupt bytes: message')
  print '(a)', 'load error as expected: '//trim(errmsg)
  call innfer_session_free(whole)

  call summaries(model)

  ! a model without a layout
  call innfer_load(trim(fixtures)//'/pypi_rnvp_tanh/model.safetensors', plain, st)
  call innfer_session_create_f(plain, 4, psession, st)
  call innfer_sample_f(psession, ys(:, 1), 1, xs, st)
  call check(st == INNFER_STATUS_NO_LAYOUT, 'no layout')
  print '(a)', 'sample error as expected: '//innfer_status_message(st)
  call innfer_summarize_f(psession, ys, 1, xs(:, 1:2), xs(:, 3:4), st)
  call check(st == INNFER_STATUS_NO_LAYOUT, 'summaries without a layout')

  call innfer_session_free(psession)
  call innfer_model_free(plain)
  call innfer_session_free(session)
  call innfer_model_free(model)
  ! The main program's variables are saved: without this, a leak to LeakSanitizer.
  deallocate (xall, xpart, bytes)
  if (failures /= 0) then
    print '(a,i0,a)', 'fortran_api: ', failures, ' check(s) failed'
    stop 1
  end if
  print '(a)', 'fortran_api: all checks passed'

contains

  ! innfer_summarize_f: mean and std are the definitions (f64 sums in sample order, divisor
  ! n - 1) applied to innfer_sample_batch_f's samples, bit for bit, and each quantile value the
  ! order statistic of rank max(1, ceiling(q n)); a session holding fewer rows than n (the
  ! passes) gives the same bits; a NaN observation is NaN and counted; extents are checked.
  subroutine summaries(model)
    type(c_ptr), intent(in) :: model
    integer, parameter :: n = 250, nq = 5
    real(c_float), parameter :: q(nq) = [0.0, 0.1, 0.5, 0.9, 1.0]
    type(c_ptr) :: big, small
    real(c_float) :: ys3(2, 3), x3(4, 3 * n), col(n), v
    real(c_float) :: mean(4, 3), sd(4, 3), qv(4, nq, 3), mean2(4, 3), sd2(4, 3), qv2(4, nq, 3)
    real(c_float) :: narrow(3, 3), one(4, 1, 3)
    real(c_double) :: acc, mu, t
    integer :: j, c, k, qi, rank, bad
    integer(c_int32_t) :: st
    character(len=200) :: msg
    logical :: exact, ordered
    ys3 = reshape([1.5, -0.25, 0.0, 2.0, -1.0, 0.5], [2, 3])
    call innfer_session_create_f(model, 1024, big, st)
    call innfer_session_create_f(model, 64, small, st)
    st = innfer_session_reseed(big, 5_c_int64_t, 0_c_int64_t)
    call innfer_sample_batch_f(big, ys3, n, x3, st)
    st = innfer_session_reseed(big, 5_c_int64_t, 0_c_int64_t)
    call innfer_summarize_f(big, ys3, n, mean, sd, st, quantiles=q, quantile_values=qv, &
                            invalid_rows=bad)
    call check(st == INNFER_STATUS_OK .and. bad == 0, 'summaries')
    exact = .true.
    ordered = .true.
    do j = 1, 3
      do c = 1, 4
        col = x3(c, (j - 1) * n + 1:j * n)
        acc = 0
        do k = 1, n
          acc = acc + real(col(k), c_double)
        end do
        mu = acc / n
        acc = 0
        do k = 1, n
          acc = acc + (real(col(k), c_double) - mu)**2
        end do
        exact = exact .and. transfer(mean(c, j), 0_c_int32_t) == &
                transfer(real(mu, c_float), 0_c_int32_t)
        exact = exact .and. transfer(sd(c, j), 0_c_int32_t) == &
                transfer(real(sqrt(acc / (n - 1)), c_float), 0_c_int32_t)
        do qi = 1, nq
          t = real(q(qi), c_double) * n
          if (t - floor(t) <= t * 2.0_c_double**(-24)) then
            rank = floor(t)
          else
            rank = ceiling(t)
          end if
          rank = max(1, min(n, rank))
          v = qv(c, qi, j)
          ordered = ordered .and. count(col < v) < rank .and. count(col <= v) >= rank
        end do
      end do
    end do
    call check(exact, 'summaries: mean and std of the samples')
    call check(ordered, 'summaries: quantiles are the order statistics')
    ! In passes: the same bits.
    st = innfer_session_reseed(small, 5_c_int64_t, 0_c_int64_t)
    call innfer_summarize_f(small, ys3, n, mean2, sd2, st, quantiles=q, quantile_values=qv2)
    call check(st == INNFER_STATUS_OK, 'summaries in passes')
    call check(same_bits(mean2, mean) .and. same_bits(sd2, sd) .and. &
               same_bits(reshape(qv2, [4, nq * 3]), reshape(qv, [4, nq * 3])), &
               'summaries in passes = in one pass')
    ! An observation with a NaN: NaN and counted; the others unchanged.
    ys3(2, 2) = ieee_value(ys3(2, 2), ieee_quiet_nan)
    st = innfer_session_reseed(small, 5_c_int64_t, 0_c_int64_t)
    call innfer_summarize_f(small, ys3, n, mean2, sd2, st, invalid_rows=bad)
    call check(st == INNFER_STATUS_OK .and. bad == 1, 'summaries: one invalid observation')
    call check(all(ieee_is_nan(mean2(:, 2))) .and. all(ieee_is_nan(sd2(:, 2))), &
               'summaries: NaN for the invalid observation')
    call check(same_bits(mean2(:, 1:1), mean(:, 1:1)) .and. same_bits(mean2(:, 3:3), mean(:, 3:3)), &
               'summaries: the others unchanged')
    ! Extents and arguments.
    call innfer_summarize_f(small, ys3, n, narrow, sd2, st, errmsg=msg)
    call check(st == INNFER_STATUS_BUFFER_SIZE, 'summaries: mean(3, rows)')
    call check(index(msg, 'mean(3, 3), expected mean(4, 3)') > 0, 'summaries: mean(3, rows) named')
    call innfer_summarize_f(small, ys3(:, 1:2), n, mean2, sd2, st)
    call check(st == INNFER_STATUS_BUFFER_SIZE, 'summaries: fewer observations than columns')
    call innfer_summarize_f(small, ys3, n, mean2, sd2, st, quantiles=q)
    call check(st == INNFER_STATUS_BUFFER_SIZE, 'summaries: quantiles without their values')
    call innfer_summarize_f(small, ys3, n, mean2, sd2, st, quantiles=q(1:2), quantile_values=qv2)
    call check(st == INNFER_STATUS_BUFFER_SIZE, 'summaries: values for other quantiles')
    call innfer_summarize_f(small, ys3, 0, mean2, sd2, st)
    call check(st == INNFER_STATUS_INVALID_ARGUMENT, 'summaries: n = 0')
    call check(index(innfer_session_message(small), 'n:') > 0, 'summaries: n named')
    call innfer_summarize_f(small, ys3, n, mean2, sd2, st, quantiles=[1.5_c_float], &
                            quantile_values=one)
    call check(st == INNFER_STATUS_INVALID_ARGUMENT, 'summaries: quantile 1.5')
    print '(a)', 'summaries error as expected: '//innfer_session_message(small)
    call innfer_session_free(small)
    call innfer_session_free(big)
  end subroutine

  ! Every wrapper checks every extent against the model's dims: a wrong one is
  ! INNFER_STATUS_BUFFER_SIZE with a message naming the array, and nothing is written (the
  ! arrays here are exactly as large as their shapes, so a write past them is an overflow that
  ! -fcheck=all or AddressSanitizer reports: scripts/sanitize-bindings.sh).
  subroutine extents(session)
    type(c_ptr), intent(in) :: session
    real(c_float) :: y2(2), y3(3), x3(3, 10), x4(4, 10), yy(3, 2), yb(2, 2), xb4(4, 20), xb5(5, 20)
    real(c_float) :: xf3(3, 4), xf4(4, 4), of4(4, 4), of3(4, 3), c1(1, 4), c2(2, 4), c23(2, 3)
    real(c_float) :: ld3(3), ld4(4), cwide(2, 8), ldwide(8), of4b(4, 4)
    character(len=200) :: msg, library
    integer(c_int32_t) :: st
    y2 = [1.5, -0.25]
    y3 = [1.5, -0.25, 0.0]
    yy = 0
    yb = 0
    x3 = -7
    xf3 = 0.5
    xf4 = 0.5
    c1 = 0
    c2 = reshape([0.5, -1.0, 0.25, 0.0, -0.75, 1.0, 0.0, 0.5], [2, 4])
    c23 = 0
    call innfer_sample_f(session, y2, 10, x3, st, msg)
    call check(st == INNFER_STATUS_BUFFER_SIZE .and. maxval(abs(x3 + 7)) < 0.5, 'sample into x(3, n)')
    call check(index(msg, 'x(3, 10)') > 0, 'sample into x(3, n): message')
    print '(a)', 'extent error as expected: '//trim(msg)
    call innfer_sample_f(session, y3, 10, x4, st, msg)
    call check(st == INNFER_STATUS_BUFFER_SIZE .and. index(msg, 'y_dim is 2') > 0, &
               'sample with y(3)')
    call innfer_sample_f(session, y2, -1, x4, st, msg)
    call check(st == INNFER_STATUS_INVALID_ARGUMENT .and. index(msg, 'n is -1') > 0, &
               'sample n = -1')
    call innfer_sample_f(session, y2, 10, x4, st, msg)
    call check(st == INNFER_STATUS_OK .and. msg == '', 'sample: blank errmsg on success')
    call innfer_sample_batch_f(session, yy, 10, xb4, st, msg)
    call check(st == INNFER_STATUS_BUFFER_SIZE .and. index(msg, 'y(3, 2)') > 0, 'batch y(3, :)')
    call innfer_sample_batch_f(session, yb, 10, xb5, st, msg)
    call check(st == INNFER_STATUS_BUFFER_SIZE .and. index(msg, 'x(5, 20)') > 0, 'batch x(5, :)')
    call innfer_sample_batch_f(session, yb, 11, xb4, st, msg)
    call check(st == INNFER_STATUS_BUFFER_SIZE .and. index(msg, '>= 22') > 0, &
               'batch x with too few columns')
    call innfer_forward_f(session, xf3, of3, st, cond=c2, errmsg=msg)
    call check(st == INNFER_STATUS_BUFFER_SIZE .and. index(msg, 'dim is 4') > 0, 'forward x(3, :)')
    call innfer_forward_f(session, xf4, of3, st, cond=c2, errmsg=msg)
    call check(st == INNFER_STATUS_BUFFER_SIZE .and. index(msg, 'output(4, 3)') > 0, &
               'forward out(4, 3)')
    call innfer_inverse_f(session, xf4, of4, st, cond=c1, errmsg=msg)
    call check(st == INNFER_STATUS_BUFFER_SIZE .and. index(msg, 'cond(1, 4)') > 0, &
               'inverse cond(1, :)')
    call innfer_inverse_f(session, xf4, of4, st, cond=c23, errmsg=msg)
    call check(st == INNFER_STATUS_BUFFER_SIZE .and. index(msg, 'expected cond(2, 4)') > 0, &
               'inverse cond(2, 3)')
    call innfer_forward_f(session, xf4, of4, st, cond=c2, logdet=ld3, errmsg=msg)
    call check(st == INNFER_STATUS_BUFFER_SIZE .and. index(msg, 'logdet(3)') > 0, 'logdet(3)')
    call innfer_forward_f(session, xf4, of4, st, cond=c2, logdet=ld4, errmsg=msg)
    call check(st == INNFER_STATUS_OK .and. msg == '', 'forward with the right extents')
    ! Strided cond and logdet (every other column): the same bits as contiguous ones.
    cwide = 0
    cwide(:, 1::2) = c2
    call innfer_forward_f(session, xf4, of4b, st, cond=cwide(:, 1::2), logdet=ldwide(1::2))
    call check(st == INNFER_STATUS_OK .and. same_bits(of4b, of4) .and. &
               same_bits(reshape(ldwide(1::2), [1, 4]), reshape(ld4, [1, 4])), &
               'forward with strided cond and logdet')
    ! A library failure carries the library's message.
    call innfer_forward_f(session, xf4, of4, st, errmsg=msg)
    library = innfer_session_message(session)
    call check(st /= INNFER_STATUS_OK .and. msg == library, &
               'forward without cond: the library''s message')
    call innfer_session_set_threads_f(session, 0, st, msg)
    call check(index(msg, 'threads is 0') > 0, 'zero threads: message')
    call innfer_session_seek_observation_f(session, 0_c_int64_t, 3, st, msg)
    call check(index(msg, 'first_obs 0') > 0, 'observation 0: message')
    call innfer_sample_f(c_null_ptr, y2, 10, x4, st, msg)
    call check(st == INNFER_STATUS_NULL_ARGUMENT .and. index(msg, 'not a live session') > 0, &
               'sample on no session')
  end subroutine

  ! A static session in a buffer of innfer_session_memory_bytes_f bytes starting at any
  ! address: the wrapper aligns it and it samples the heap session's bits; short, not
  ! contiguous and max_batch 0 are errors with messages, as is creating a heap session of
  ! max_batch 0.
  subroutine static_sessions(model, reference)
    type(c_ptr), intent(in) :: model
    real(c_float), intent(in) :: reference(:, :)
    integer(c_int8_t), allocatable, target :: memory(:)
    type(c_ptr) :: s
    integer(c_size_t) :: bytes
    integer(c_int32_t) :: st
    integer :: skip
    character(len=200) :: msg
    real(c_float) :: xs(4, 10)
    call innfer_session_memory_bytes_f(model, 16, bytes, st)
    call check(st == INNFER_STATUS_OK .and. bytes > INNFER_ARENA_ALIGN, 'memory bytes')
    allocate (memory(2 * bytes))
    do skip = 0, 3
      call innfer_session_init_static_f(model, 16, memory(1 + skip:bytes + skip), s, st, msg)
      call check(st == INNFER_STATUS_OK .and. msg == '', 'static session at any offset')
      call check(innfer_session_max_batch(s) == 16_c_size_t, 'static session max_batch')
      st = innfer_session_reseed(s, 3_c_int64_t, 1_c_int64_t)
      call innfer_sample_f(s, [1.5_c_float, -0.25_c_float], 10, xs, st)
      call check(st == INNFER_STATUS_OK .and. same_bits(xs, reference), &
                 'static session samples = heap session samples')
      call innfer_session_free(s)
    end do
    call innfer_session_init_static_f(model, 16, memory(1:bytes - 1), s, st, msg)
    call check(st == INNFER_STATUS_ARENA_TOO_SMALL .and. .not. c_associated(s), &
               'static session in too little memory')
    call check(index(msg, 'the session needs') > 0, 'too little memory: message')
    print '(a)', 'static session error as expected: '//trim(msg)
    call innfer_session_init_static_f(model, 16, memory(::2), s, st, msg)
    call check(st == INNFER_STATUS_INVALID_ARGUMENT .and. index(msg, 'contiguous') > 0, &
               'static session in strided memory')
    call innfer_session_init_static_f(model, 0, memory, s, st, msg)
    call check(st == INNFER_STATUS_INVALID_ARGUMENT .and. index(msg, 'max_batch is 0') > 0, &
               'static session of max_batch 0')
    call innfer_session_create_f(model, 0, s, st, msg)
    call check(st == INNFER_STATUS_INVALID_ARGUMENT .and. index(msg, 'max_batch is 0') > 0, &
               'heap session of max_batch 0')
    call innfer_session_create_f(c_null_ptr, 4, s, st, msg)
    call check(st == INNFER_STATUS_NULL_ARGUMENT .and. index(msg, 'c_null_ptr') > 0, &
               'heap session of no model')
    deallocate (memory)
  end subroutine

  logical function same_bits(a, b)
    real(c_float), intent(in) :: a(:, :), b(:, :)
    same_bits = size(a) == size(b)
    if (same_bits) same_bits = all(transfer(a, [0_c_int32_t]) == transfer(b, [0_c_int32_t]))
  end function

  subroutine check(ok, what)
    logical, intent(in) :: ok
    character(len=*), intent(in) :: what
    if (.not. ok) then
      print '(a)', 'FAIL: '//what
      failures = failures + 1
    end if
  end subroutine

end program fortran_api
