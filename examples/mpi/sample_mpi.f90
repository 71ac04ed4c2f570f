! sample_mpi.f90: posterior samples for a file of observations, split over MPI ranks, with the
! same bits as one process (docs/scaling.md). The Fortran twin of sample_mpi.c.
!
!   usage: mpirun -n P sample_mpi MODEL OBS.npy N SEED OUT.npy [THREADS]
!     MODEL    a model file (.safetensors in the innfer format) with a sampling layout
!     OBS.npy  the observations, float32 [m, y_dim] (or [y_dim]: one observation)
!     N        samples per observation
!     SEED     seed of the random stream (stream 0)
!     OUT.npy  written: float32 [m*N, x_dim], observation by observation, the same file
!              `innfer sample MODEL --y OBS.npy -n N --seed SEED --output OUT.npy` writes
!     THREADS  threads per rank (default 1)
!
! Rank 0 reads the model file and broadcasts its bytes; every rank loads the model from them
! (innfer_load_bytes); rank 0 reads the observations and scatters contiguous blocks (the first
! mod(m, P) ranks take one more); each rank seeks its random stream to the first sample of its
! block (innfer_session_seek_observation_f) and writes its samples into the one output file
! with MPI-IO at their place. Any failure prints the reason and calls MPI_Abort, which ends
! every rank. INNFER_MPI_CORRUPT_RANK=r (for examples/mpi/run.sh) damages the model bytes rank
! r received, to show what a corrupted broadcast does.
!
! Build (from the repository root, after `cargo build --release`; one line):
!   mpif90 -std=f2008 -O2 -Jbuild-f -c bindings/fortran/innfer.f90 -o build-f/innfer.o
!   mpif90 -std=f2008 -O2 -Ibuild-f examples/mpi/sample_mpi.f90 build-f/innfer.o
!       target/release/libinnfer.a -lpthread -ldl -lm -o sample_mpi
program sample_mpi
  use, intrinsic :: iso_c_binding
  use, intrinsic :: iso_fortran_env, only: error_unit, int64
  use mpi_f08
  use innfer
  implicit none

  ! Rows per pass: at least 256 per thread, so each of a session's threads gets a long run.
  integer, parameter :: min_batch = 4096
  ! Sample rows per sampling call and per write: bounds a rank's memory whatever its block.
  integer, parameter :: chunk_rows = 65536
  ! Bytes per MPI_Bcast call (counts are default integers).
  integer(int64), parameter :: bcast_bytes = 2_int64**30

  integer :: rank, ranks, threads, x_dim, y_dim, layout, r, m_local, per_call, obs, rows
  integer :: header_len
  integer(int64) :: model_len, m_all, n, j, j0, off, part, k
  integer(c_int64_t) :: seed
  integer(c_int32_t) :: st
  integer(c_int8_t), allocatable :: model_bytes(:)
  real(c_float), allocatable :: y_all(:, :), y(:, :), x(:, :)
  integer, allocatable :: counts(:), displs(:)
  character(len=4096) :: model_path, obs_path, out_path, arg
  character(len=1024) :: errmsg
  character(len=128) :: header
  type(c_ptr) :: model, session
  type(MPI_Datatype) :: obs_type
  type(MPI_File) :: out
  integer :: ierr
  integer(MPI_OFFSET_KIND) :: total_bytes
  double precision :: start, elapsed, slowest

  call MPI_Init()
  start = MPI_Wtime()
  call MPI_Comm_rank(MPI_COMM_WORLD, rank)
  call MPI_Comm_size(MPI_COMM_WORLD, ranks)
  if (command_argument_count() < 5 .or. command_argument_count() > 6) then
    if (rank == 0) write (error_unit, '(a)') &
      'usage: mpirun -n P sample_mpi MODEL OBS.npy N SEED OUT.npy [THREADS]'
    call MPI_Finalize()
    stop 2
  end if
  call get_command_argument(1, model_path)
  call get_command_argument(2, obs_path)
  call get_command_argument(5, out_path)
  n = int_argument(3)
  seed = int_argument(4)
  threads = 1
  if (command_argument_count() == 6) threads = int(int_argument(6))
  if (n < 1 .or. threads < 1) call fail('N and THREADS must be positive')

  ! The model: one read on rank 0, its bytes broadcast.
  model_len = 0
  if (rank == 0) call read_bytes(trim(model_path), model_bytes, model_len)
  call MPI_Bcast(model_len, 1, MPI_INTEGER8, 0, MPI_COMM_WORLD)
  if (rank /= 0) allocate (model_bytes(model_len))
  do off = 0, model_len - 1, bcast_bytes
    part = min(bcast_bytes, model_len - off)
    call MPI_Bcast(model_bytes(off + 1:off + part), int(part), MPI_BYTE, 0, MPI_COMM_WORLD)
  end do
  call get_environment_variable('INNFER_MPI_CORRUPT_RANK', arg, status=ierr)
  if (ierr == 0 .and. model_len > 16) then
    if (trim(arg) == itoa(int(rank, int64))) model_bytes(9:16) = int(ichar('X'), c_int8_t)
  end if
  call innfer_load_bytes(model_bytes, model, st, errmsg)
  if (st /= INNFER_STATUS_OK) &
    call fail('cannot load the model broadcast from '//trim(model_path)//': '//trim(errmsg))
  deallocate (model_bytes)  ! the model keeps its own copy
  call innfer_dims_f(model, st, x_dim=x_dim, y_dim=y_dim, layout=layout)
  if (layout == INNFER_LAYOUT_NONE) call fail(trim(model_path)//' has no sampling layout')

  ! The observations: read on rank 0, contiguous blocks scattered.
  if (rank == 0) then
    call read_npy_rows(trim(obs_path), y_dim, y_all)
    m_all = size(y_all, 2, kind=int64)
  else
    allocate (y_all(y_dim, 1))  ! not read by MPI_Scatterv off the root
  end if
  call MPI_Bcast(m_all, 1, MPI_INTEGER8, 0, MPI_COMM_WORLD)
  if (m_all > huge(0)) call fail('more than 2^31 - 1 observations')
  allocate (counts(0:ranks - 1), displs(0:ranks - 1))
  do r = 0, ranks - 1
    counts(r) = int(m_all / ranks) + merge(1, 0, r < mod(m_all, int(ranks, int64)))
    displs(r) = r * int(m_all / ranks) + min(r, int(mod(m_all, int(ranks, int64))))
  end do
  m_local = counts(rank)
  j0 = displs(rank)  ! first observation of this rank, counted from 0
  allocate (y(y_dim, max(m_local, 1)))
  call MPI_Type_contiguous(y_dim, MPI_REAL, obs_type)
  call MPI_Type_commit(obs_type)
  call MPI_Scatterv(y_all, counts, displs, obs_type, y, m_local, obs_type, 0, MPI_COMM_WORLD)
  call MPI_Type_free(obs_type)
  deallocate (y_all)

  ! This rank's session: the run's stream, at the first sample of observation j0 + 1.
  call innfer_session_create_f(model, max(min_batch, 256 * threads), session, st)
  if (st /= INNFER_STATUS_OK) call fail('cannot create a session')
  call innfer_session_set_threads_f(session, threads, st)
  if (st == INNFER_STATUS_OK) st = innfer_session_reseed(session, seed, 0_c_int64_t)
  if (st == INNFER_STATUS_OK) call innfer_session_seek_observation_f(session, j0 + 1, int(n), st)
  if (st /= INNFER_STATUS_OK) call fail(innfer_session_message(session))

  ! One output file: rank 0 writes the header, every rank its rows at their place.
  call npy_header(m_all * n, x_dim, header, header_len)
  total_bytes = header_len + m_all * n * x_dim * 4_int64
  call MPI_File_open(MPI_COMM_WORLD, trim(out_path), ior(MPI_MODE_CREATE, MPI_MODE_WRONLY), &
                     MPI_INFO_NULL, out, ierr)
  call check_mpi(ierr, trim(out_path))
  call MPI_File_set_size(out, total_bytes, ierr)
  call check_mpi(ierr, 'setting the output''s size')
  if (rank == 0) then
    call MPI_File_write_at(out, 0_MPI_OFFSET_KIND, header, header_len, MPI_CHARACTER, &
                           MPI_STATUS_IGNORE, ierr)
    call check_mpi(ierr, 'writing the .npy header')
  end if
  allocate (x(x_dim, chunk_rows))
  if (n < chunk_rows) then
    ! Whole observations per call: local columns j .. j+obs-1.
    per_call = chunk_rows / int(n)
    do j = 1, m_local, per_call
      obs = int(min(int(per_call, int64), m_local - j + 1))
      call innfer_sample_batch_f(session, y(:, j:j + obs - 1), int(n), x, st)
      if (st /= INNFER_STATUS_OK) call fail('sampling: '//innfer_session_message(session))
      call write_rows((j0 + j - 1) * n, obs * int(n))
    end do
  else
    ! One observation in several calls: the stream carries on from call to call.
    do j = 1, m_local
      do k = 0, n - 1, chunk_rows
        rows = int(min(int(chunk_rows, int64), n - k))
        call innfer_sample_f(session, y(:, j), rows, x, st)
        if (st /= INNFER_STATUS_OK) call fail('sampling: '//innfer_session_message(session))
        call write_rows((j0 + j - 1) * n + k, rows)
      end do
    end do
  end if
  call MPI_File_close(out, ierr)
  call check_mpi(ierr, 'closing the output')

  elapsed = MPI_Wtime() - start
  call MPI_Reduce(elapsed, slowest, 1, MPI_DOUBLE_PRECISION, MPI_MAX, 0, MPI_COMM_WORLD)
  if (rank == 0) then
    write (arg, '(f12.3)') slowest
    write (*, '(a,i0,a,i0,a,i0,a,i0,a,i0,a)') 'sample_mpi: ', m_all, ' observations x ', n, &
      ' samples -> '//trim(out_path)//' on ', ranks, ' ranks x ', threads, ' threads: '// &
      trim(adjustl(arg))//' s, ', nint(m_all * n / slowest, int64), ' samples/s'
  end if

  call innfer_session_free(session)
  call innfer_model_free(model)
  call MPI_Finalize()

contains

  ! Prints the reason and ends the whole job (every rank).
  subroutine fail(msg)
    character(len=*), intent(in) :: msg
    write (error_unit, '(a,i0,a)') 'sample_mpi: rank ', rank, ': '//msg
    flush (error_unit)
    call MPI_Abort(MPI_COMM_WORLD, 1)
    stop 1
  end subroutine

  subroutine check_mpi(code, what)
    integer, intent(in) :: code
    character(len=*), intent(in) :: what
    character(len=MPI_MAX_ERROR_STRING) :: text
    integer :: length
    if (code /= MPI_SUCCESS) then
      call MPI_Error_string(code, text, length)
      call fail(what//': '//text(1:length))
    end if
  end subroutine

  ! Samples rows first .. first+count-1 (counted from 0; the first count columns of x) at
  ! their place in the output.
  subroutine write_rows(first, count)
    integer(int64), intent(in) :: first
    integer, intent(in) :: count
    integer(MPI_OFFSET_KIND) :: at
    at = header_len + first * x_dim * 4_int64
    call MPI_File_write_at(out, at, x, count * x_dim, MPI_REAL, MPI_STATUS_IGNORE, ierr)
    call check_mpi(ierr, 'writing samples')
  end subroutine

  integer(int64) function int_argument(i)
    integer, intent(in) :: i
    character(len=64) :: text
    integer :: ios
    call get_command_argument(i, text)
    read (text, *, iostat=ios) int_argument
    if (ios /= 0) call fail('argument '//itoa(int(i, int64))//' must be an integer: '//trim(text))
  end function

  function itoa(v) result(s)
    integer(int64), intent(in) :: v
    character(len=:), allocatable :: s
    character(len=24) :: buf
    write (buf, '(i0)') v
    s = trim(buf)
  end function

  ! The whole file as bytes.
  subroutine read_bytes(path, bytes, length)
    character(len=*), intent(in) :: path
    integer(c_int8_t), allocatable, intent(out) :: bytes(:)
    integer(int64), intent(out) :: length
    integer :: unit, ios
    character(len=512) :: iomsg
    open (newunit=unit, file=path, access='stream', form='unformatted', status='old', &
          action='read', iostat=ios, iomsg=iomsg)
    if (ios /= 0) call fail('cannot read '//path//': '//trim(iomsg))
    inquire (unit=unit, size=length)
    allocate (bytes(length))
    read (unit, iostat=ios, iomsg=iomsg) bytes
    if (ios /= 0) call fail('cannot read '//path//': '//trim(iomsg))
    close (unit)
  end subroutine

  ! The float32 [m, cols] (or [cols]) data of a .npy file as y(cols, m): the same memory.
  subroutine read_npy_rows(path, cols, y)
    character(len=*), intent(in) :: path
    integer, intent(in) :: cols
    real(c_float), allocatable, intent(out) :: y(:, :)
    integer(c_int8_t), allocatable :: bytes(:)
    integer(int64) :: length, dims(2), ndims, hlen, i, want
    character(len=:), allocatable :: text
    integer :: p, q, ios
    call read_bytes(path, bytes, length)
    if (length < 10) call fail(path//': not a version 1 .npy file')
    allocate (character(len=length) :: text)
    text = transfer(bytes, text)
    if (text(1:8) /= char(147)//'NUMPY'//char(1)//char(0)) &
      call fail(path//': not a version 1 .npy file')
    hlen = ichar(text(9:9)) + 256_int64 * ichar(text(10:10))
    if (10 + hlen > length) call fail(path//': truncated header')
    associate (h => text(11:10 + hlen))
      if (index(h, "'descr': '<f4'") == 0 .or. index(h, "'fortran_order': False") == 0) &
        call fail(path//": need little-endian float32 ('<f4') in C order")
      p = index(h, "'shape': (")
      if (p == 0) call fail(path//': no shape in the header')
      p = p + len("'shape': (")
      q = p + index(h(p:), ')') - 1
      if (q < p) call fail(path//': no shape in the header')
      ! "(m, cols)", "(cols,)": count the numbers, then read them.
      ndims = 0
      do i = p, q - 1
        if (h(i:i) == ',' .and. verify(h(i + 1:q - 1), ' ') /= 0) ndims = ndims + 1
      end do
      ndims = ndims + 1
      if (ndims > 2) call fail(path//': need a 1-D or 2-D array')
      read (h(p:q - 1), *, iostat=ios) dims(1:ndims)
      if (ios /= 0) call fail(path//': cannot read the shape')
    end associate
    if (ndims == 1) dims = [1_int64, dims(1)]
    if (dims(2) /= cols) call fail(path//': rows of '//itoa(dims(2))//' values, the model''s '// &
                                   'y_dim is '//itoa(int(cols, int64)))
    want = dims(1) * cols * 4
    if (length - 10 - hlen /= want) call fail(path//': the data does not match the shape')
    allocate (y(cols, dims(1)))
    if (want > 0) y = reshape(transfer(bytes(11 + hlen:), 0.0_c_float, dims(1) * cols), &
                              [int(cols, int64), dims(1)])
  end subroutine

  ! The header numpy (and `innfer sample`) writes for float32 [rows, cols]: v1.0, padded with
  ! spaces to a multiple of 64 bytes.
  subroutine npy_header(rows, cols, header, total)
    integer(int64), intent(in) :: rows
    integer, intent(in) :: cols
    character(len=*), intent(out) :: header
    integer, intent(out) :: total
    character(len=:), allocatable :: dict
    dict = "{'descr': '<f4', 'fortran_order': False, 'shape': ("//itoa(rows)//", "// &
           itoa(int(cols, int64))//"), }"
    total = (10 + len(dict) + 1 + 63) / 64 * 64
    header = char(147)//'NUMPY'//char(1)//char(0)//char(mod(total - 10, 256))// &
             char((total - 10) / 256)//dict
    header(11 + len(dict):total - 1) = ' '
    header(total:total) = char(10)
  end subroutine

end program sample_mpi
