! sample.f90: posterior samples from an innfer model, from Fortran (bindings/fortran/innfer.f90).
!
!   usage: sample MODEL Y [N]
!     MODEL  a model file (.safetensors in the innfer format) with a sampling layout
!     Y      the observation, comma-separated, y_dim values (e.g. 1.5,0)
!     N      number of samples (default 1000)
!   Draws N samples of x with seed 0 and prints the mean and standard deviation of each
!   parameter. With INNFER_EXAMPLE_DUMP=FILE it also writes the raw samples there
!   (float32, native byte order, [N][x_dim] row-major = Fortran x(x_dim, N)).
!
! Build (from the repository root, after `cargo build --release`):
!   gfortran -std=f2008 -O2 -Jbuild-f -c bindings/fortran/innfer.f90 -o build-f/innfer.o
!   gfortran -std=f2008 -O2 -Ibuild-f examples/fortran/sample.f90 build-f/innfer.o
!       target/release/libinnfer.a -lpthread -ldl -lm -o sample        (static; one line)
! or link the shared library: ... -Ltarget/release -linnfer -Wl,-rpath,$PWD/target/release
program sample
  use, intrinsic :: iso_c_binding
  use innfer
  implicit none

  integer, parameter :: max_batch = 256
  character(len=:), allocatable :: model_path, y_text, n_text, dump
  character(len=512) :: errmsg
  type(c_ptr) :: model, session
  integer(c_int32_t) :: status
  integer :: x_dim, y_dim, layout, n, i, j, ios, nargs, unit
  real(c_float), allocatable :: y(:), x(:, :)
  real(c_double) :: mean, sq, sd

  nargs = command_argument_count()
  if (nargs < 2 .or. nargs > 3) then
    write (*, '(a)') 'usage: sample MODEL Y [N]   (Y comma-separated, e.g. 1.5,0)'
    stop 2
  end if
  model_path = argument(1)
  y_text = argument(2)
  n = 1000
  if (nargs == 3) then
    n_text = argument(3)
    read (n_text, *, iostat=ios) n
    if (ios /= 0 .or. n <= 0) then
      write (*, '(a)') 'N must be a positive integer'
      stop 2
    end if
  end if

  call innfer_load(model_path, model, status, errmsg)
  if (status /= INNFER_STATUS_OK) then
    write (*, '(a)') 'cannot load '//model_path//': '//trim(errmsg)
    stop 1
  end if
  call innfer_dims_f(model, status, x_dim=x_dim, y_dim=y_dim, layout=layout)
  if (layout == INNFER_LAYOUT_NONE) then
    write (*, '(a)') model_path//' has no sampling layout'
    stop 1
  end if

  ! Y: exactly y_dim comma-separated numbers (list-directed input reads "1.5,0").
  if (count_commas(y_text) + 1 /= y_dim) then
    write (*, '(a,i0,a)') 'Y must be ', y_dim, ' comma-separated numbers'
    stop 2
  end if
  allocate (y(y_dim))
  read (y_text, *, iostat=ios) y
  if (ios /= 0) then
    write (*, '(a)') 'Y must be comma-separated numbers, got '//y_text
    stop 2
  end if

  call innfer_session_create_f(model, max_batch, session, status)
  if (status /= INNFER_STATUS_OK) then
    write (*, '(a)') 'cannot create a session: '//innfer_status_message(status)
    stop 1
  end if
  status = innfer_session_reseed(session, 0_c_int64_t, 0_c_int64_t)

  allocate (x(x_dim, n))
  call innfer_sample_f(session, y, n, x, status)
  if (status /= INNFER_STATUS_OK) then
    write (*, '(a)') 'sampling failed: '//innfer_session_message(session)// &
      ' ('//innfer_status_message(status)//')'
    stop 1
  end if

  dump = environment('INNFER_EXAMPLE_DUMP')
  if (len(dump) > 0) then
    open (newunit=unit, file=dump, access='stream', form='unformatted', status='replace', &
          action='write', iostat=ios)
    if (ios == 0) write (unit, iostat=ios) x
    if (ios /= 0) then
      write (*, '(a)') 'cannot write '//dump
      stop 1
    end if
    close (unit)
  end if

  write (*, '(i0,a,i0)') n, ' samples, seed 0, x_dim ', x_dim
  write (*, '(a5,1x,a14,1x,a14)') 'param', 'mean', 'std'
  do j = 1, x_dim
    mean = 0
    do i = 1, n
      mean = mean + real(x(j, i), c_double)
    end do
    mean = mean / n
    sq = 0
    do i = 1, n
      sq = sq + (real(x(j, i), c_double) - mean)**2
    end do
    sd = 0
    if (n > 1) sd = sqrt(sq / (n - 1))
    write (*, '(i5,1x,f14.6,1x,f14.6)') j - 1, mean, sd
  end do

  call innfer_session_free(session)
  call innfer_model_free(model)
  ! The main program's variables are saved: without this, leaks to LeakSanitizer.
  deallocate (x, y, model_path, y_text, dump)
  if (allocated(n_text)) deallocate (n_text)

contains

  function argument(k) result(s)
    integer, intent(in) :: k
    character(len=:), allocatable :: s
    integer :: length
    call get_command_argument(k, length=length)
    allocate (character(len=length) :: s)
    call get_command_argument(k, s)
  end function

  function environment(name) result(s)
    character(len=*), intent(in) :: name
    character(len=:), allocatable :: s
    integer :: length, st
    call get_environment_variable(name, length=length, status=st)
    if (st /= 0) length = 0
    allocate (character(len=length) :: s)
    if (length > 0) call get_environment_variable(name, s)
  end function

  integer function count_commas(s)
    character(len=*), intent(in) :: s
    integer :: k
    count_commas = 0
    do k = 1, len(s)
      if (s(k:k) == ',') count_commas = count_commas + 1
    end do
  end function

end program sample
