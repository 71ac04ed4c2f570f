! innfer.f90: Fortran 2008 bindings of the innfer C API (include/innfer.h), in the style of
! FFTW's fftw3.f03: the C constants as parameters, one bind(C) interface per C function, and a
! few Fortran-friendly wrappers (names ending in _f, plus innfer_load and the *_message
! functions) that take Fortran strings and assumed-shape arrays.
!
! Build: gfortran -std=f2008 -c innfer.f90   (produces innfer.mod)
! Link:  ... -linnfer  (static library: also -lpthread -ldl -lm)
!
! Conventions
! * Handles are type(c_ptr); c_null_ptr after a failed load/create. Free with
!   innfer_model_free / innfer_session_free.
! * Status codes are integer(c_int32_t): INNFER_STATUS_OK = 0, see below.
! * Matrices: the C API is row-major [rows][cols]. A Fortran array x(cols, rows) has the same
!   memory, so a sample array is x(x_dim, n) and a forward input x(dim, rows). For other
!   layouts use the *_strided functions with element strides (Fortran x(rows, cols): rs = 1,
!   cs = rows).
! * Seeds, streams and stream rows are uint64 in C; pass integer(c_int64_t) bit patterns
!   (e.g. 0_c_int64_t).
! * Sizes are integer(c_size_t) in the thin interfaces; the wrappers take default integers.
! * The wrappers check every array extent against the model's dims (a mismatch is
!   INNFER_STATUS_BUFFER_SIZE, nothing written) and take an optional errmsg that receives the
!   reason of a failure. The thin interfaces check nothing the C API cannot: an array too small
!   for the counts passed is read or written past its end.
! * Static sessions (no allocation): innfer_session_memory_bytes_f, then
!   innfer_session_init_static_f on an integer(c_int8_t), target buffer of that many bytes; the
!   wrapper aligns the session inside it.
module innfer
  use, intrinsic :: iso_c_binding
  implicit none

  ! Status codes (innfer_status).
  integer(c_int32_t), parameter :: INNFER_STATUS_OK = 0
  integer(c_int32_t), parameter :: INNFER_STATUS_NULL_ARGUMENT = 1
  integer(c_int32_t), parameter :: INNFER_STATUS_INVALID_ARGUMENT = 2
  integer(c_int32_t), parameter :: INNFER_STATUS_IO = 3
  integer(c_int32_t), parameter :: INNFER_STATUS_FORMAT = 4
  integer(c_int32_t), parameter :: INNFER_STATUS_METADATA = 5
  integer(c_int32_t), parameter :: INNFER_STATUS_TENSOR = 6
  integer(c_int32_t), parameter :: INNFER_STATUS_UNSUPPORTED = 7
  integer(c_int32_t), parameter :: INNFER_STATUS_DIMS = 8
  integer(c_int32_t), parameter :: INNFER_STATUS_BATCH_TOO_LARGE = 9
  integer(c_int32_t), parameter :: INNFER_STATUS_BUFFER_SIZE = 10
  integer(c_int32_t), parameter :: INNFER_STATUS_ARENA_TOO_SMALL = 11
  integer(c_int32_t), parameter :: INNFER_STATUS_ARENA_MISALIGNED = 12
  integer(c_int32_t), parameter :: INNFER_STATUS_NO_LAYOUT = 13
  integer(c_int32_t), parameter :: INNFER_STATUS_ISA_UNAVAILABLE = 14
  integer(c_int32_t), parameter :: INNFER_STATUS_INTERNAL = 15
  integer(c_int32_t), parameter :: INNFER_STATUS_OUT_OF_MEMORY = 16
  integer(c_int32_t), parameter :: INNFER_STATUS_NON_FINITE_OUTPUT = 17

  ! Layouts (innfer_model_dims' layout).
  integer(c_int32_t), parameter :: INNFER_LAYOUT_NONE = 0
  integer(c_int32_t), parameter :: INNFER_LAYOUT_INN = 1
  integer(c_int32_t), parameter :: INNFER_LAYOUT_CINN = 2

  ! Weight storage (innfer_load_options.weight_storage) and the variables of
  ! innfer_model_standardization().
  integer(c_int32_t), parameter :: INNFER_WEIGHT_STORAGE_F32 = 0
  integer(c_int32_t), parameter :: INNFER_WEIGHT_STORAGE_BF16 = 1
  integer(c_int32_t), parameter :: INNFER_WEIGHT_STORAGE_F16 = 2
  integer(c_int32_t), parameter :: INNFER_VARIABLE_X = 0
  integer(c_int32_t), parameter :: INNFER_VARIABLE_Y = 1

  ! Versions and the alignment of static session memory.
  integer(c_int32_t), parameter :: INNFER_VERSION_MAJOR = 0
  integer(c_int32_t), parameter :: INNFER_VERSION_MINOR = 1
  integer(c_int32_t), parameter :: INNFER_VERSION_PATCH = 0
  ! C's INNFER_ABI_VERSION macro; renamed because Fortran names are case-insensitive and
  ! innfer_abi_version() is the function returning the linked library's ABI version.
  integer(c_int32_t), parameter :: INNFER_HEADER_ABI_VERSION = 2
  integer(c_size_t), parameter :: INNFER_ARENA_ALIGN = 64

  ! Kind of the C ptrdiff_t strides. iso_c_binding has c_ptrdiff_t only from Fortran 2018;
  ! c_intptr_t (Fortran 2003) has the same width on every flat-address-space platform.
  integer, parameter :: innfer_ptrdiff_t = c_intptr_t

  ! ---------------------------------------------------------------------------------------
  ! The C functions, one to one. Nullable pointer arguments (err is not nullable here: pass a
  ! buffer, err_len may be 0; cond and logdet of forward/inverse are) are type(c_ptr), value:
  ! pass c_loc(array) or c_null_ptr.
  ! ---------------------------------------------------------------------------------------
  interface
    ! uint32_t innfer_abi_version(void)
    integer(c_int32_t) function innfer_abi_version() bind(C, name="innfer_abi_version")
      import :: c_int32_t
    end function

    ! const char *innfer_version_string(void)
    type(c_ptr) function innfer_version_string() bind(C, name="innfer_version_string")
      import :: c_ptr
    end function

    ! const char *innfer_status_string(innfer_status)
    type(c_ptr) function innfer_status_string(s) bind(C, name="innfer_status_string")
      import :: c_ptr, c_int32_t
      integer(c_int32_t), value :: s
    end function

    integer(c_int32_t) function innfer_model_load_file(path, out, err, err_len) &
        bind(C, name="innfer_model_load_file")
      import :: c_int32_t, c_char, c_ptr, c_size_t
      character(kind=c_char), dimension(*), intent(in) :: path
      type(c_ptr), intent(out) :: out
      character(kind=c_char), dimension(*), intent(inout) :: err
      integer(c_size_t), value :: err_len
    end function

    integer(c_int32_t) function innfer_model_load_bytes(data, len, out, err, err_len) &
        bind(C, name="innfer_model_load_bytes")
      import :: c_int32_t, c_int8_t, c_char, c_ptr, c_size_t
      integer(c_int8_t), dimension(*), intent(in) :: data
      integer(c_size_t), value :: len
      type(c_ptr), intent(out) :: out
      character(kind=c_char), dimension(*), intent(inout) :: err
      integer(c_size_t), value :: err_len
    end function

    subroutine innfer_model_free(m) bind(C, name="innfer_model_free")
      import :: c_ptr
      type(c_ptr), value :: m
    end subroutine

    integer(c_int32_t) function innfer_model_dims(m, dim, cond_dim, x_dim, y_dim, z_dim, &
        layout) bind(C, name="innfer_model_dims")
      import :: c_int32_t, c_ptr, c_size_t
      type(c_ptr), value :: m
      integer(c_size_t), intent(out) :: dim, cond_dim, x_dim, y_dim, z_dim
      integer(c_int32_t), intent(out) :: layout
    end function

    integer(c_size_t) function innfer_model_block_count(m) &
        bind(C, name="innfer_model_block_count")
      import :: c_size_t, c_ptr
      type(c_ptr), value :: m
    end function

    integer(c_int32_t) function innfer_session_size(m, max_batch, bytes) &
        bind(C, name="innfer_session_size")
      import :: c_int32_t, c_ptr, c_size_t
      type(c_ptr), value :: m
      integer(c_size_t), value :: max_batch
      integer(c_size_t), intent(out) :: bytes
    end function

    ! memory: INNFER_ARENA_ALIGN-aligned caller memory of at least innfer_session_size bytes.
    integer(c_int32_t) function innfer_session_init_static(m, max_batch, memory, bytes, out) &
        bind(C, name="innfer_session_init_static")
      import :: c_int32_t, c_ptr, c_size_t
      type(c_ptr), value :: m
      integer(c_size_t), value :: max_batch
      type(c_ptr), value :: memory
      integer(c_size_t), value :: bytes
      type(c_ptr), intent(out) :: out
    end function

    integer(c_int32_t) function innfer_session_create(m, max_batch, out) &
        bind(C, name="innfer_session_create")
      import :: c_int32_t, c_ptr, c_size_t
      type(c_ptr), value :: m
      integer(c_size_t), value :: max_batch
      type(c_ptr), intent(out) :: out
    end function

    subroutine innfer_session_free(s) bind(C, name="innfer_session_free")
      import :: c_ptr
      type(c_ptr), value :: s
    end subroutine

    integer(c_int32_t) function innfer_session_reseed(s, seed, stream) &
        bind(C, name="innfer_session_reseed")
      import :: c_int32_t, c_int64_t, c_ptr
      type(c_ptr), value :: s
      integer(c_int64_t), value :: seed, stream
    end function

    ! row: a uint64 in C, passed as its integer(c_int64_t) bit pattern like the seed.
    integer(c_int32_t) function innfer_session_seek(s, row) bind(C, name="innfer_session_seek")
      import :: c_int32_t, c_int64_t, c_ptr
      type(c_ptr), value :: s
      integer(c_int64_t), value :: row
    end function

    ! seed, stream, next_row: uint64 in C (bit patterns).
    integer(c_int32_t) function innfer_session_rng_position(s, seed, stream, next_row) &
        bind(C, name="innfer_session_rng_position")
      import :: c_int32_t, c_int64_t, c_ptr
      type(c_ptr), value :: s
      integer(c_int64_t), intent(out) :: seed, stream, next_row
    end function

    integer(c_int32_t) function innfer_session_set_threads(s, threads) &
        bind(C, name="innfer_session_set_threads")
      import :: c_int32_t, c_ptr, c_size_t
      type(c_ptr), value :: s
      integer(c_size_t), value :: threads
    end function

    integer(c_size_t) function innfer_session_max_batch(s) &
        bind(C, name="innfer_session_max_batch")
      import :: c_size_t, c_ptr
      type(c_ptr), value :: s
    end function

    type(c_ptr) function innfer_session_model(s) bind(C, name="innfer_session_model")
      import :: c_ptr
      type(c_ptr), value :: s
    end function

    type(c_ptr) function innfer_session_last_error(s) bind(C, name="innfer_session_last_error")
      import :: c_ptr
      type(c_ptr), value :: s
    end function

    ! y(y_dim), x(x_dim, n_samples)
    integer(c_int32_t) function innfer_sample(s, y, n_samples, x) bind(C, name="innfer_sample")
      import :: c_int32_t, c_ptr, c_size_t, c_float
      type(c_ptr), value :: s
      real(c_float), dimension(*), intent(in) :: y
      integer(c_size_t), value :: n_samples
      real(c_float), dimension(*), intent(inout) :: x
    end function

    ! y(y_dim, n_obs), x(x_dim, n_obs*n_samples)
    integer(c_int32_t) function innfer_sample_batch(s, y, n_obs, n_samples, x) &
        bind(C, name="innfer_sample_batch")
      import :: c_int32_t, c_ptr, c_size_t, c_float
      type(c_ptr), value :: s
      real(c_float), dimension(*), intent(in) :: y
      integer(c_size_t), value :: n_obs, n_samples
      real(c_float), dimension(*), intent(inout) :: x
    end function

    integer(c_int32_t) function innfer_sample_strided(s, y, y_rs, y_cs, n_obs, n_samples, x, &
        x_rs, x_cs) bind(C, name="innfer_sample_strided")
      import :: c_int32_t, c_ptr, c_size_t, innfer_ptrdiff_t, c_float
      type(c_ptr), value :: s
      real(c_float), dimension(*), intent(in) :: y
      integer(innfer_ptrdiff_t), value :: y_rs, y_cs
      integer(c_size_t), value :: n_obs, n_samples
      real(c_float), dimension(*), intent(inout) :: x
      integer(innfer_ptrdiff_t), value :: x_rs, x_cs
    end function

    ! y(y_dim, rows), quantiles = c_loc(q(n_quantiles)) or c_null_ptr, mean(x_dim, rows),
    ! std(x_dim, rows), quantile_values = c_loc(v(x_dim, n_quantiles, rows)) or c_null_ptr,
    ! invalid_rows = c_loc(count) (integer(c_size_t)) or c_null_ptr
    integer(c_int32_t) function innfer_session_summarize(s, y, rows, n, quantiles, &
        n_quantiles, mean, std, quantile_values, invalid_rows) &
        bind(C, name="innfer_session_summarize")
      import :: c_int32_t, c_ptr, c_size_t, c_float
      type(c_ptr), value :: s
      real(c_float), dimension(*), intent(in) :: y
      integer(c_size_t), value :: rows, n
      type(c_ptr), value :: quantiles
      integer(c_size_t), value :: n_quantiles
      real(c_float), dimension(*), intent(inout) :: mean, std
      type(c_ptr), value :: quantile_values, invalid_rows
    end function

    ! x(dim, rows), cond = c_loc(c(cond_dim, rows)) or c_null_ptr, out(dim, rows),
    ! logdet = c_loc(ld(rows)) or c_null_ptr
    integer(c_int32_t) function innfer_forward(s, x, cond, rows, out, logdet) &
        bind(C, name="innfer_forward")
      import :: c_int32_t, c_ptr, c_size_t, c_float
      type(c_ptr), value :: s
      real(c_float), dimension(*), intent(in) :: x
      type(c_ptr), value :: cond
      integer(c_size_t), value :: rows
      real(c_float), dimension(*), intent(inout) :: out
      type(c_ptr), value :: logdet
    end function

    integer(c_int32_t) function innfer_inverse(s, in, cond, rows, x, logdet) &
        bind(C, name="innfer_inverse")
      import :: c_int32_t, c_ptr, c_size_t, c_float
      type(c_ptr), value :: s
      real(c_float), dimension(*), intent(in) :: in
      type(c_ptr), value :: cond
      integer(c_size_t), value :: rows
      real(c_float), dimension(*), intent(inout) :: x
      type(c_ptr), value :: logdet
    end function

    integer(c_int32_t) function innfer_forward_strided(s, x, x_rs, x_cs, cond, c_rs, c_cs, &
        rows, out, o_rs, o_cs, logdet) bind(C, name="innfer_forward_strided")
      import :: c_int32_t, c_ptr, c_size_t, innfer_ptrdiff_t, c_float
      type(c_ptr), value :: s
      real(c_float), dimension(*), intent(in) :: x
      integer(innfer_ptrdiff_t), value :: x_rs, x_cs
      type(c_ptr), value :: cond
      integer(innfer_ptrdiff_t), value :: c_rs, c_cs
      integer(c_size_t), value :: rows
      real(c_float), dimension(*), intent(inout) :: out
      integer(innfer_ptrdiff_t), value :: o_rs, o_cs
      type(c_ptr), value :: logdet
    end function

    integer(c_int32_t) function innfer_inverse_strided(s, in, i_rs, i_cs, cond, c_rs, c_cs, &
        rows, x, x_rs, x_cs, logdet) bind(C, name="innfer_inverse_strided")
      import :: c_int32_t, c_ptr, c_size_t, innfer_ptrdiff_t, c_float
      type(c_ptr), value :: s
      real(c_float), dimension(*), intent(in) :: in
      integer(innfer_ptrdiff_t), value :: i_rs, i_cs
      type(c_ptr), value :: cond
      integer(innfer_ptrdiff_t), value :: c_rs, c_cs
      integer(c_size_t), value :: rows
      real(c_float), dimension(*), intent(inout) :: x
      integer(innfer_ptrdiff_t), value :: x_rs, x_cs
      type(c_ptr), value :: logdet
    end function
  end interface

  private :: c_to_f_string, pass_f, load_message, sampling_dims, creation_message, report, &
             decimal, extents

contains

  ! A NUL-terminated C string (may be c_null_ptr → "") as a Fortran string.
  function c_to_f_string(p) result(s)
    type(c_ptr), intent(in) :: p
    character(len=:), allocatable :: s
    character(kind=c_char), pointer :: chars(:)
    integer :: i, n
    if (.not. c_associated(p)) then
      s = ""
      return
    end if
    ! The library's strings are short (messages are at most 1024 bytes); scan for the NUL.
    call c_f_pointer(p, chars, [4096])
    n = 0
    do while (n < size(chars))
      if (chars(n + 1) == c_null_char) exit
      n = n + 1
    end do
    allocate (character(len=n) :: s)
    do i = 1, n
      s(i:i) = chars(i)
    end do
  end function

  ! The library's text for a status code, e.g. "ok".
  function innfer_status_message(status) result(msg)
    integer(c_int32_t), intent(in) :: status
    character(len=:), allocatable :: msg
    msg = c_to_f_string(innfer_status_string(status))
  end function

  ! The detailed message of the last failed call on a session ("" if none).
  function innfer_session_message(session) result(msg)
    type(c_ptr), intent(in) :: session
    character(len=:), allocatable :: msg
    msg = c_to_f_string(innfer_session_last_error(session))
  end function

  ! The library version, e.g. "0.1.0".
  function innfer_version() result(v)
    character(len=:), allocatable :: v
    v = c_to_f_string(innfer_version_string())
  end function

  ! Loads a model file. model = c_null_ptr on failure; errmsg (optional) gets the message
  ! (blank on success, truncated to len(errmsg)).
  subroutine innfer_load(path, model, status, errmsg)
    character(len=*), intent(in) :: path
    type(c_ptr), intent(out) :: model
    integer(c_int32_t), intent(out) :: status
    character(len=*), intent(out), optional :: errmsg
    character(kind=c_char) :: err(1024)
    err = c_null_char
    status = innfer_model_load_file(trim(path)//c_null_char, model, err, &
                                    int(size(err), c_size_t))
    if (present(errmsg)) errmsg = load_message(status, err)
  end subroutine

  ! Loads a model from the bytes of a model file (copied: data may be freed afterwards), e.g.
  ! bytes one MPI rank read and broadcast. model = c_null_ptr on failure; errmsg as innfer_load.
  subroutine innfer_load_bytes(data, model, status, errmsg)
    integer(c_int8_t), intent(in), contiguous :: data(:)
    type(c_ptr), intent(out) :: model
    integer(c_int32_t), intent(out) :: status
    character(len=*), intent(out), optional :: errmsg
    character(kind=c_char) :: err(1024)
    err = c_null_char
    status = innfer_model_load_bytes(data, int(size(data), c_size_t), model, err, &
                                     int(size(err), c_size_t))
    if (present(errmsg)) errmsg = load_message(status, err)
  end subroutine

  ! A load call's message: blank on success, else the NUL-terminated err (or the status text).
  function load_message(status, err) result(msg)
    integer(c_int32_t), intent(in) :: status
    character(kind=c_char), intent(in) :: err(:)
    character(len=:), allocatable :: msg
    integer :: i
    msg = ""
    if (status == INNFER_STATUS_OK) return
    do i = 1, size(err)
      if (err(i) == c_null_char) exit
      msg = msg//err(i)
    end do
    if (len(msg) == 0) msg = innfer_status_message(status)
  end function

  ! Model dimensions as default integers; every output is optional.
  subroutine innfer_dims_f(model, status, dim, cond_dim, x_dim, y_dim, z_dim, layout)
    type(c_ptr), intent(in) :: model
    integer(c_int32_t), intent(out) :: status
    integer, intent(out), optional :: dim, cond_dim, x_dim, y_dim, z_dim, layout
    integer(c_size_t) :: d, cd, xd, yd, zd
    integer(c_int32_t) :: l
    status = innfer_model_dims(model, d, cd, xd, yd, zd, l)
    if (status /= INNFER_STATUS_OK) then
      d = 0; cd = 0; xd = 0; yd = 0; zd = 0; l = INNFER_LAYOUT_NONE
    end if
    if (present(dim)) dim = int(d)
    if (present(cond_dim)) cond_dim = int(cd)
    if (present(x_dim)) x_dim = int(xd)
    if (present(y_dim)) y_dim = int(yd)
    if (present(z_dim)) z_dim = int(zd)
    if (present(layout)) layout = int(l)
  end subroutine

  ! ---------------------------------------------------------------------------------------
  ! Session wrappers. Each checks every extent of its arrays against the model's dims before
  ! calling C (the C API sees only addresses and counts, so a wrong extent would make it read
  ! or write past the array): a mismatch is INNFER_STATUS_BUFFER_SIZE and nothing is written.
  ! The optional errmsg receives the reason of a failure (blank on success): the wrapper's own
  ! for what it checks, else the library's (innfer_session_message), truncated to len(errmsg).
  ! ---------------------------------------------------------------------------------------

  ! A heap session for passes of at most max_batch rows; session = c_null_ptr on failure.
  subroutine innfer_session_create_f(model, max_batch, session, status, errmsg)
    type(c_ptr), intent(in) :: model
    integer, intent(in) :: max_batch
    type(c_ptr), intent(out) :: session
    integer(c_int32_t), intent(out) :: status
    character(len=*), intent(out), optional :: errmsg
    session = c_null_ptr
    if (max_batch < 1) then
      status = INNFER_STATUS_INVALID_ARGUMENT
      call report(errmsg, status, session, 'innfer_session_create_f: max_batch is '// &
                  decimal(int(max_batch, c_int64_t))//', must be at least 1')
      return
    end if
    status = innfer_session_create(model, int(max_batch, c_size_t), session)
    call report(errmsg, status, session, creation_message('innfer_session_create_f', status, &
                                                          model, max_batch))
  end subroutine

  ! Bytes of memory innfer_session_init_static_f needs for passes of at most max_batch rows:
  ! innfer_session_size plus INNFER_ARENA_ALIGN - 1, room to align the session inside any
  ! buffer. Allocate integer(c_int8_t), target :: memory(bytes).
  subroutine innfer_session_memory_bytes_f(model, max_batch, bytes, status)
    type(c_ptr), intent(in) :: model
    integer, intent(in) :: max_batch
    integer(c_size_t), intent(out) :: bytes
    integer(c_int32_t), intent(out) :: status
    bytes = 0
    if (max_batch < 1) then
      status = INNFER_STATUS_INVALID_ARGUMENT
      return
    end if
    status = innfer_session_size(model, int(max_batch, c_size_t), bytes)
    if (status == INNFER_STATUS_OK) bytes = bytes + INNFER_ARENA_ALIGN - 1
  end subroutine

  ! A session living in memory, caller-owned bytes (at least innfer_session_memory_bytes_f):
  ! the session is placed at the first INNFER_ARENA_ALIGN-aligned byte inside it, so any
  ! buffer will do. Nothing is allocated. memory must be an actual argument with the target
  ! attribute, contiguous, and must stay allocated and untouched until
  ! innfer_session_free(session). session = c_null_ptr on failure (INNFER_STATUS_ARENA_TOO_SMALL,
  ! or INNFER_STATUS_INVALID_ARGUMENT for memory that is not contiguous).
  subroutine innfer_session_init_static_f(model, max_batch, memory, session, status, errmsg)
    type(c_ptr), intent(in) :: model
    integer, intent(in) :: max_batch
    integer(c_int8_t), intent(inout), target :: memory(:)
    type(c_ptr), intent(out) :: session
    integer(c_int32_t), intent(out) :: status
    character(len=*), intent(out), optional :: errmsg
    integer(c_size_t) :: need, skip
    session = c_null_ptr
    call innfer_session_memory_bytes_f(model, max_batch, need, status)
    if (status /= INNFER_STATUS_OK) then
      call report(errmsg, status, session, creation_message('innfer_session_init_static_f', &
                                                            status, model, max_batch))
      return
    end if
    if (.not. is_contiguous(memory)) then
      ! A copy would be passed in its place, and freed on return.
      status = INNFER_STATUS_INVALID_ARGUMENT
      call report(errmsg, status, session, 'innfer_session_init_static_f: memory is not '// &
                  'contiguous')
      return
    end if
    if (size(memory, kind=c_size_t) < need) then
      status = INNFER_STATUS_ARENA_TOO_SMALL
      call report(errmsg, status, session, 'innfer_session_init_static_f: memory holds '// &
                  decimal(size(memory, kind=c_int64_t))//' bytes, the session needs '// &
                  decimal(int(need, c_int64_t))//' (innfer_session_memory_bytes_f)')
      return
    end if
    ! The address as an integer: transfer of a c_ptr is how every Fortran compiler exposes it.
    skip = int(modulo(-transfer(c_loc(memory), 0_c_intptr_t), &
                      int(INNFER_ARENA_ALIGN, c_intptr_t)), c_size_t)
    status = innfer_session_init_static(model, int(max_batch, c_size_t), &
                                        c_loc(memory(1 + skip)), size(memory, kind=c_size_t) - &
                                        skip, session)
    call report(errmsg, status, session, creation_message('innfer_session_init_static_f', &
                                                          status, model, max_batch))
  end subroutine

  ! Splits each call of the session over threads threads (1: the calling thread only); the
  ! samples do not depend on it. Starts the session's worker threads.
  subroutine innfer_session_set_threads_f(session, threads, status, errmsg)
    type(c_ptr), intent(in) :: session
    integer, intent(in) :: threads
    integer(c_int32_t), intent(out) :: status
    character(len=*), intent(out), optional :: errmsg
    if (threads < 1) then
      status = INNFER_STATUS_INVALID_ARGUMENT
      call report(errmsg, status, session, 'innfer_session_set_threads_f: threads is '// &
                  decimal(int(threads, c_int64_t))//', must be at least 1')
      return
    end if
    status = innfer_session_set_threads(session, int(threads, c_size_t))
    call report(errmsg, status, session)
  end subroutine

  ! Moves the random stream to the first sample of observation first_obs (counted from 1,
  ! Fortran style) of a run that draws n samples for each observation: row (first_obs - 1) * n
  ! (innfer_session_seek() in innfer.h). A block of observations drawn after this call, by
  ! any process, gets the samples one call over the whole run draws for them.
  subroutine innfer_session_seek_observation_f(session, first_obs, n, status, errmsg)
    type(c_ptr), intent(in) :: session
    integer(c_int64_t), intent(in) :: first_obs
    integer, intent(in) :: n
    integer(c_int32_t), intent(out) :: status
    character(len=*), intent(out), optional :: errmsg
    if (first_obs < 1 .or. n < 0) then
      status = INNFER_STATUS_INVALID_ARGUMENT
      call report(errmsg, status, session, 'innfer_session_seek_observation_f: first_obs '// &
                  decimal(first_obs)//' (from 1), n '//decimal(int(n, c_int64_t))// &
                  ' (at least 0)')
      return
    end if
    status = innfer_session_seek(session, (first_obs - 1) * int(n, c_int64_t))
    call report(errmsg, status, session)
  end subroutine

  ! n posterior samples for the observation y(y_dim) into x(x_dim, n) (x may have more columns;
  ! the first n are written).
  subroutine innfer_sample_f(session, y, n, x, status, errmsg)
    type(c_ptr), intent(in) :: session
    real(c_float), intent(in), contiguous :: y(:)
    integer, intent(in) :: n
    real(c_float), intent(inout), contiguous :: x(:, :)
    integer(c_int32_t), intent(out) :: status
    character(len=*), intent(out), optional :: errmsg
    character(len=:), allocatable :: problem
    integer :: x_dim, y_dim
    call sampling_dims(session, 'innfer_sample_f', n, status, problem, x_dim, y_dim)
    if (status == INNFER_STATUS_OK) then
      status = INNFER_STATUS_BUFFER_SIZE
      if (size(y) /= y_dim) then
        problem = 'innfer_sample_f: y has '//decimal(size(y, kind=c_int64_t))// &
                  ' elements, the model''s y_dim is '//decimal(int(y_dim, c_int64_t))
      else if (size(x, 1) /= x_dim .or. size(x, 2) < n) then
        problem = 'innfer_sample_f: x'//extents(shape(x, kind=c_int64_t))//' cannot hold '// &
                  decimal(int(n, c_int64_t))//' samples: x('//decimal(int(x_dim, c_int64_t))// &
                  ', >= '//decimal(int(n, c_int64_t))//') needed'
      else
        status = innfer_sample(session, y, int(n, c_size_t), x)
      end if
    end if
    call report(errmsg, status, session, problem)
  end subroutine

  ! n samples for each column of y(y_dim, n_obs) into x(x_dim, n_obs*n), observation by
  ! observation (x may have more columns; the first n_obs*n are written).
  subroutine innfer_sample_batch_f(session, y, n, x, status, errmsg)
    type(c_ptr), intent(in) :: session
    real(c_float), intent(in), contiguous :: y(:, :)
    integer, intent(in) :: n
    real(c_float), intent(inout), contiguous :: x(:, :)
    integer(c_int32_t), intent(out) :: status
    character(len=*), intent(out), optional :: errmsg
    character(len=:), allocatable :: problem
    integer :: x_dim, y_dim
    integer(c_int64_t) :: rows
    call sampling_dims(session, 'innfer_sample_batch_f', n, status, problem, x_dim, y_dim)
    if (status == INNFER_STATUS_OK) then
      status = INNFER_STATUS_BUFFER_SIZE
      rows = size(y, 2, kind=c_int64_t) * n
      if (size(y, 1) /= y_dim) then
        problem = 'innfer_sample_batch_f: y'//extents(shape(y, kind=c_int64_t))// &
                  ', the model''s y_dim is '//decimal(int(y_dim, c_int64_t))
      else if (size(x, 1) /= x_dim .or. size(x, 2, kind=c_int64_t) < rows) then
        problem = 'innfer_sample_batch_f: x'//extents(shape(x, kind=c_int64_t))// &
                  ' cannot hold the samples: x('//decimal(int(x_dim, c_int64_t))//', >= '// &
                  decimal(rows)//') needed'
      else
        status = innfer_sample_batch(session, y, size(y, 2, kind=c_size_t), &
                                     int(n, c_size_t), x)
      end if
    end if
    call report(errmsg, status, session, problem)
  end subroutine

  ! Summaries of n posterior samples for each column of y(y_dim, rows), without the samples:
  ! mean(x_dim, rows) and std(x_dim, rows) (divisor n - 1) and, with quantiles(n_quantiles)
  ! (each in [0, 1]), the order statistics quantile_values(x_dim, n_quantiles, rows): exactly
  ! the summaries of the samples innfer_sample_batch_f draws from the same stream position
  ! (definitions: innfer_session_summarize() in innfer.h). A column of y whose condition is not
  ! finite gets NaN in all its outputs and is counted in invalid_rows. The extents are checked
  ! against the model's x_dim and y_dim (INNFER_STATUS_BUFFER_SIZE); quantile_values is needed
  ! when quantiles has elements.
  subroutine innfer_summarize_f(session, y, n, mean, std, status, quantiles, quantile_values, &
                                invalid_rows, errmsg)
    type(c_ptr), intent(in) :: session
    real(c_float), intent(in), contiguous :: y(:, :)
    integer, intent(in) :: n
    real(c_float), intent(inout), contiguous :: mean(:, :), std(:, :)
    integer(c_int32_t), intent(out) :: status
    real(c_float), intent(in), contiguous, target, optional :: quantiles(:)
    real(c_float), intent(inout), contiguous, target, optional :: quantile_values(:, :, :)
    integer, intent(out), optional :: invalid_rows
    character(len=*), intent(out), optional :: errmsg
    character(len=:), allocatable :: problem
    integer(c_size_t), target :: count
    integer(c_size_t) :: nq
    type(c_ptr) :: pq, pv
    integer :: x_dim, y_dim
    integer(c_int64_t) :: rows, want(3)
    if (present(invalid_rows)) invalid_rows = 0
    call sampling_dims(session, 'innfer_summarize_f', n, status, problem, x_dim, y_dim)
    if (status /= INNFER_STATUS_OK) then
      call report(errmsg, status, session, problem)
      return
    end if
    rows = size(y, 2, kind=c_int64_t)
    nq = 0
    pq = c_null_ptr
    pv = c_null_ptr
    if (present(quantiles)) then
      nq = size(quantiles, kind=c_size_t)
      if (nq > 0) pq = c_loc(quantiles)
    end if
    want = [int(x_dim, c_int64_t), int(nq, c_int64_t), rows]
    status = INNFER_STATUS_BUFFER_SIZE
    if (size(y, 1) /= y_dim) then
      problem = 'innfer_summarize_f: y'//extents(shape(y, kind=c_int64_t))// &
                ', the model''s y_dim is '//decimal(int(y_dim, c_int64_t))
    else if (any(shape(mean, kind=c_int64_t) /= want([1, 3]))) then
      problem = 'innfer_summarize_f: mean'//extents(shape(mean, kind=c_int64_t))// &
                ', expected mean'//extents(want([1, 3]))
    else if (any(shape(std, kind=c_int64_t) /= want([1, 3]))) then
      problem = 'innfer_summarize_f: std'//extents(shape(std, kind=c_int64_t))// &
                ', expected std'//extents(want([1, 3]))
    else if (nq > 0 .and. .not. present(quantile_values)) then
      problem = 'innfer_summarize_f: quantiles without quantile_values'//extents(want)
    else
      status = INNFER_STATUS_OK
      if (present(quantile_values)) then
        if (any(shape(quantile_values, kind=c_int64_t) /= want)) then
          status = INNFER_STATUS_BUFFER_SIZE
          problem = 'innfer_summarize_f: quantile_values'// &
                    extents(shape(quantile_values, kind=c_int64_t))// &
                    ', expected quantile_values'//extents(want)
        else if (size(quantile_values) > 0) then
          pv = c_loc(quantile_values)
        end if
      end if
    end if
    if (status == INNFER_STATUS_OK) then
      status = innfer_session_summarize(session, y, int(rows, c_size_t), int(n, c_size_t), &
                                        pq, nq, mean, std, pv, c_loc(count))
      if (present(invalid_rows) .and. status == INNFER_STATUS_OK) invalid_rows = int(count)
    end if
    call report(errmsg, status, session, problem)
  end subroutine

  ! out(dim, rows) = f(x(dim, rows); cond(cond_dim, rows)); logdet(rows). rows = size(x, 2),
  ! at most the session's max_batch. cond only for conditional models.
  subroutine innfer_forward_f(session, x, out, status, cond, logdet, errmsg)
    type(c_ptr), intent(in) :: session
    real(c_float), intent(in), contiguous :: x(:, :)
    real(c_float), intent(inout), contiguous :: out(:, :)
    integer(c_int32_t), intent(out) :: status
    real(c_float), intent(in), target, optional :: cond(:, :)
    real(c_float), intent(inout), target, optional :: logdet(:)
    character(len=*), intent(out), optional :: errmsg
    call pass_f(.false., session, x, out, status, cond, logdet, errmsg)
  end subroutine

  ! x(dim, rows) = f⁻¹(in(dim, rows); cond); logdet(rows) of the inverse map.
  subroutine innfer_inverse_f(session, in, x, status, cond, logdet, errmsg)
    type(c_ptr), intent(in) :: session
    real(c_float), intent(in), contiguous :: in(:, :)
    real(c_float), intent(inout), contiguous :: x(:, :)
    integer(c_int32_t), intent(out) :: status
    real(c_float), intent(in), target, optional :: cond(:, :)
    real(c_float), intent(inout), target, optional :: logdet(:)
    character(len=*), intent(out), optional :: errmsg
    call pass_f(.true., session, in, x, status, cond, logdet, errmsg)
  end subroutine

  subroutine pass_f(rev, session, a, b, status, cond, logdet, errmsg)
    logical, intent(in) :: rev
    type(c_ptr), intent(in) :: session
    real(c_float), intent(in), contiguous :: a(:, :)
    real(c_float), intent(inout), contiguous :: b(:, :)
    integer(c_int32_t), intent(out) :: status
    ! cond and logdet are not declared contiguous, here and in the wrappers: gfortran (12)
    ! passing an absent contiguous optional array on to another procedure reads through a null
    ! pointer (UndefinedBehaviorSanitizer). A strided one is copied here instead.
    real(c_float), intent(in), target, optional :: cond(:, :)
    real(c_float), intent(inout), target, optional :: logdet(:)
    character(len=*), intent(out), optional :: errmsg
    real(c_float), allocatable, target :: cond_copy(:, :), logdet_copy(:)
    character(len=:), allocatable :: name, problem
    type(c_ptr) :: pc, pl
    integer :: dim, cond_dim
    integer(c_int64_t) :: rows
    name = 'innfer_forward_f'
    if (rev) name = 'innfer_inverse_f'
    problem = ''
    rows = size(a, 2, kind=c_int64_t)
    pc = c_null_ptr
    pl = c_null_ptr
    call innfer_dims_f(innfer_session_model(session), status, dim=dim, cond_dim=cond_dim)
    if (status /= INNFER_STATUS_OK) then
      problem = name//': not a live session'
    else
      status = INNFER_STATUS_BUFFER_SIZE
      if (size(a, 1) /= dim) then
        problem = name//': input'//extents(shape(a, kind=c_int64_t))//', the model''s dim is '// &
                  decimal(int(dim, c_int64_t))
      else if (any(shape(b, kind=c_int64_t) /= shape(a, kind=c_int64_t))) then
        problem = name//': output'//extents(shape(b, kind=c_int64_t))//', expected'// &
                  extents(shape(a, kind=c_int64_t))
      else
        status = INNFER_STATUS_OK
        if (present(cond)) then
          if (size(cond, 1) /= cond_dim .or. size(cond, 2, kind=c_int64_t) /= rows) then
            status = INNFER_STATUS_BUFFER_SIZE
            problem = name//': cond'//extents(shape(cond, kind=c_int64_t))//', expected cond'// &
                      extents([int(cond_dim, c_int64_t), rows])
          else if (size(cond) > 0 .and. is_contiguous(cond)) then
            pc = c_loc(cond)
          else if (size(cond) > 0) then
            cond_copy = cond
            pc = c_loc(cond_copy)
          end if
        end if
        if (present(logdet) .and. status == INNFER_STATUS_OK) then
          if (size(logdet, kind=c_int64_t) /= rows) then
            status = INNFER_STATUS_BUFFER_SIZE
            problem = name//': logdet('//decimal(size(logdet, kind=c_int64_t))// &
                      '), expected logdet('//decimal(rows)//')'
          else if (size(logdet) > 0 .and. is_contiguous(logdet)) then
            pl = c_loc(logdet)
          else if (size(logdet) > 0) then
            allocate (logdet_copy(size(logdet)))
            pl = c_loc(logdet_copy)
          end if
        end if
      end if
    end if
    if (status == INNFER_STATUS_OK) then
      if (rev) then
        status = innfer_inverse(session, a, pc, int(rows, c_size_t), b, pl)
      else
        status = innfer_forward(session, a, pc, int(rows, c_size_t), b, pl)
      end if
      if (allocated(logdet_copy)) logdet = logdet_copy
    end if
    call report(errmsg, status, session, problem)
  end subroutine

  ! The x_dim and y_dim of a session's model, for a sampling wrapper: status is
  ! INNFER_STATUS_OK, or the failure (n negative, not a live session, no sampling layout) with
  ! its description in problem.
  subroutine sampling_dims(session, name, n, status, problem, x_dim, y_dim)
    type(c_ptr), intent(in) :: session
    character(len=*), intent(in) :: name
    integer, intent(in) :: n
    integer(c_int32_t), intent(out) :: status
    character(len=:), allocatable, intent(out) :: problem
    integer, intent(out) :: x_dim, y_dim
    integer :: layout
    call innfer_dims_f(innfer_session_model(session), status, x_dim=x_dim, y_dim=y_dim, &
                       layout=layout)
    if (n < 0) then
      status = INNFER_STATUS_INVALID_ARGUMENT
      problem = name//': n is '//decimal(int(n, c_int64_t))//', must be at least 0'
    else if (status /= INNFER_STATUS_OK) then
      problem = name//': not a live session'
    else if (layout == INNFER_LAYOUT_NONE) then
      status = INNFER_STATUS_NO_LAYOUT
      problem = name//': the model has no sampling layout (innfer.layout = none); use '// &
                'innfer_forward_f/innfer_inverse_f'
    end if
  end subroutine

  ! The message of a failed session creation. The C API keeps none for it (there is no session
  ! to keep it in: innfer_session_last_error() in innfer.h), so it is told from the status.
  function creation_message(name, status, model, max_batch) result(msg)
    character(len=*), intent(in) :: name
    integer(c_int32_t), intent(in) :: status
    type(c_ptr), intent(in) :: model
    integer, intent(in) :: max_batch
    character(len=:), allocatable :: msg
    msg = name//': '//innfer_status_message(status)
    if (status == INNFER_STATUS_NULL_ARGUMENT .and. .not. c_associated(model)) then
      msg = msg//': the model is c_null_ptr'
    else if (status == INNFER_STATUS_INVALID_ARGUMENT .and. max_batch < 1) then
      msg = msg//': max_batch is '//decimal(int(max_batch, c_int64_t))//', must be at least 1'
    else if (status == INNFER_STATUS_INVALID_ARGUMENT) then
      msg = msg//': not a live model, or max_batch '//decimal(int(max_batch, c_int64_t))// &
            ' too large to address'
    end if
  end function

  ! errmsg (if present): blank if status is INNFER_STATUS_OK, else problem (if present), else
  ! the session's message for its last failed call, else the status text.
  subroutine report(errmsg, status, session, problem)
    character(len=*), intent(out), optional :: errmsg
    integer(c_int32_t), intent(in) :: status
    type(c_ptr), intent(in) :: session
    character(len=*), intent(in), optional :: problem
    if (.not. present(errmsg)) return
    errmsg = ''
    if (status == INNFER_STATUS_OK) return
    if (present(problem)) then
      if (len(problem) > 0) then
        errmsg = problem
        return
      end if
    end if
    if (c_associated(session)) errmsg = innfer_session_message(session)
    if (len_trim(errmsg) == 0) errmsg = innfer_status_message(status)
  end subroutine

  ! An integer in decimal, e.g. '-12'.
  function decimal(i) result(s)
    integer(c_int64_t), intent(in) :: i
    character(len=:), allocatable :: s
    character(len=24) :: buffer
    write (buffer, '(i0)') i
    s = trim(buffer)
  end function

  ! Array extents as Fortran writes them, e.g. '(3, 10)'.
  function extents(shape_) result(s)
    integer(c_int64_t), intent(in) :: shape_(:)
    character(len=:), allocatable :: s
    integer :: k
    s = '('
    do k = 1, size(shape_)
      if (k > 1) s = s//', '
      s = s//decimal(shape_(k))
    end do
    s = s//')'
  end function

end module innfer
