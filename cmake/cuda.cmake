# CUDA backend (src/backend/cuda): included from CMakeLists.txt when RI_WITH_CUDA is ON, after the library
# targets exist and after enable_language(CUDA).
#
# - src/backend/cuda/*.c join the library objects (C11, the project's warning flags);
# - src/backend/cuda/*.cu build as one object library (C++17 under nvcc) whose objects join both libraries;
# - RI_HAVE_CUDA=1 makes src/engine/engine.c pick ri__cuda_backend for "cuda" / "cuda:N";
# - the libraries link CUDA::cudart, cuDNN and cuBLASLt;
# - tests/gpu/*.c build as executables that are NOT registered with ctest (they need a GPU; see
#   scripts/gpu/device-run.sh).
#
# cuDNN and cuBLASLt are looked up in the CUDA toolkit, then under CUDNN_ROOT / CUBLAS_ROOT (CMake or
# environment variables), which may point at the pip wheels' folders (nvidia/cudnn, nvidia/cublas) whose
# libraries carry only versioned names.

find_package(CUDAToolkit REQUIRED)

set(CUDNN_ROOT "$ENV{CUDNN_ROOT}" CACHE PATH "cuDNN prefix (include/cudnn.h, lib/libcudnn.so*)")
set(CUBLAS_ROOT "$ENV{CUBLAS_ROOT}" CACHE PATH "cuBLAS prefix when cuBLASLt is not in the CUDA toolkit")

find_path(CUDNN_INCLUDE_DIR cudnn.h
          HINTS ${CUDNN_ROOT} ${CUDAToolkit_INCLUDE_DIRS}
          PATH_SUFFIXES include)
find_library(CUDNN_LIBRARY NAMES cudnn libcudnn.so.9
             HINTS ${CUDNN_ROOT} ${CUDAToolkit_LIBRARY_DIR}
             PATH_SUFFIXES lib lib64)
if(NOT CUDNN_INCLUDE_DIR OR NOT CUDNN_LIBRARY)
  message(FATAL_ERROR "cuDNN not found (cudnn.h: ${CUDNN_INCLUDE_DIR}, library: ${CUDNN_LIBRARY}); set CUDNN_ROOT")
endif()

if(TARGET CUDA::cublasLt)
  set(RI_CUBLASLT CUDA::cublasLt)
  find_path(CUBLASLT_INCLUDE_DIR cublasLt.h HINTS ${CUDAToolkit_INCLUDE_DIRS} ${CUBLAS_ROOT} PATH_SUFFIXES include)
else()
  find_library(CUBLASLT_LIBRARY NAMES cublasLt libcublasLt.so.13 libcublasLt.so.12
               HINTS ${CUBLAS_ROOT} ${CUDAToolkit_LIBRARY_DIR} PATH_SUFFIXES lib lib64)
  find_path(CUBLASLT_INCLUDE_DIR cublasLt.h HINTS ${CUBLAS_ROOT} ${CUDAToolkit_INCLUDE_DIRS} PATH_SUFFIXES include)
  if(NOT CUBLASLT_LIBRARY)
    message(FATAL_ERROR "cuBLASLt not found; set CUBLAS_ROOT")
  endif()
  set(RI_CUBLASLT ${CUBLASLT_LIBRARY})
endif()
message(STATUS "CUDA backend: toolkit ${CUDAToolkit_VERSION}, archs ${CMAKE_CUDA_ARCHITECTURES}, cuDNN ${CUDNN_LIBRARY}")

# The project's compile options are C compiler flags (-Wall -Wextra -Werror ...) that nvcc does not take:
# keep them for every language but CUDA in the targets created from here on.
get_directory_property(_ri_opts COMPILE_OPTIONS)
set(_ri_wrapped "")
foreach(_o IN LISTS _ri_opts)
  list(APPEND _ri_wrapped "$<$<NOT:$<COMPILE_LANGUAGE:CUDA>>:${_o}>")
endforeach()
set_property(DIRECTORY PROPERTY COMPILE_OPTIONS "${_ri_wrapped}")

set(RI_CUDA_INCLUDES ${CUDAToolkit_INCLUDE_DIRS} ${CUDNN_INCLUDE_DIR} ${CUBLASLT_INCLUDE_DIR})
set(RI_CUDA_LIBS CUDA::cudart ${CUDNN_LIBRARY} ${RI_CUBLASLT})

file(GLOB RI_CUDA_C_SOURCES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/src/backend/cuda/*.c)
file(GLOB RI_CUDA_CU_SOURCES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/src/backend/cuda/*.cu)

target_sources(ri_objects PRIVATE ${RI_CUDA_C_SOURCES})
target_include_directories(ri_objects PRIVATE ${RI_CUDA_INCLUDES})
target_compile_definitions(ri_objects PUBLIC RI_HAVE_CUDA=1)

# k_pwgemm_wg.cu uses Hopper's wgmma instructions, which only the arch-specific target sm_90a has. When the
# configured architectures include 90 (90, 90-real, 90a ...) it builds in an object library of its own for
# compute_90a / sm_90a alone: a source-level -gencode would only add an sm_90a image to the target's
# compute_90 / sm_90 ones, whose copy of the kernel is the empty stub, and which of two 9.0 images the driver
# loads is not ours to pick. Otherwise it stays in ri_cuda_kernels as a stub that the launcher, compiled
# without RI_WG_SM90A, never runs (it answers cudaErrorNotSupported).
set(RI_WG_SOURCE ${CMAKE_SOURCE_DIR}/src/backend/cuda/k_pwgemm_wg.cu)
set(_ri_has_sm90 OFF)
foreach(_a IN LISTS CMAKE_CUDA_ARCHITECTURES)
  if(_a MATCHES "^90")
    set(_ri_has_sm90 ON)
  endif()
endforeach()
if(_ri_has_sm90)
  list(REMOVE_ITEM RI_CUDA_CU_SOURCES ${RI_WG_SOURCE})
endif()

add_library(ri_cuda_kernels OBJECT ${RI_CUDA_CU_SOURCES})
target_include_directories(ri_cuda_kernels PRIVATE ${CMAKE_SOURCE_DIR}/include ${CMAKE_SOURCE_DIR}/src)
set_target_properties(ri_cuda_kernels PROPERTIES CUDA_STANDARD 17 CUDA_STANDARD_REQUIRED ON
                                                 POSITION_INDEPENDENT_CODE ON)
target_compile_options(ri_cuda_kernels PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-Wall,-Wextra --Werror=all-warnings>)

target_sources(runinfer_static PRIVATE $<TARGET_OBJECTS:ri_cuda_kernels>)
target_sources(runinfer PRIVATE $<TARGET_OBJECTS:ri_cuda_kernels>)

if(_ri_has_sm90)
  add_library(ri_cuda_kernels_sm90a OBJECT ${RI_WG_SOURCE})
  target_include_directories(ri_cuda_kernels_sm90a PRIVATE ${CMAKE_SOURCE_DIR}/include ${CMAKE_SOURCE_DIR}/src)
  target_compile_definitions(ri_cuda_kernels_sm90a PRIVATE RI_WG_SM90A=1)
  set_target_properties(ri_cuda_kernels_sm90a PROPERTIES CUDA_STANDARD 17 CUDA_STANDARD_REQUIRED ON
                                                         POSITION_INDEPENDENT_CODE ON CUDA_ARCHITECTURES OFF)
  target_compile_options(ri_cuda_kernels_sm90a PRIVATE
    $<$<COMPILE_LANGUAGE:CUDA>:-gencode=arch=compute_90a,code=sm_90a -Xcompiler=-Wall,-Wextra --Werror=all-warnings>)
  target_sources(runinfer_static PRIVATE $<TARGET_OBJECTS:ri_cuda_kernels_sm90a>)
  target_sources(runinfer PRIVATE $<TARGET_OBJECTS:ri_cuda_kernels_sm90a>)
endif()

target_compile_definitions(runinfer_static PUBLIC RI_HAVE_CUDA=1)
target_include_directories(runinfer_static PUBLIC ${RI_CUDA_INCLUDES})
target_link_libraries(runinfer_static PUBLIC ${RI_CUDA_LIBS})
target_link_libraries(runinfer PRIVATE ${RI_CUDA_LIBS})

# GPU tests and benchmarks: built everywhere (so CI proves they compile), run only on a GPU machine.
file(GLOB RI_GPU_PROGRAMS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/gpu/*.c)
foreach(t ${RI_GPU_PROGRAMS})
  get_filename_component(tname ${t} NAME_WE)
  add_executable(${tname} ${t})
  target_link_libraries(${tname} PRIVATE runinfer_static)
  target_compile_definitions(${tname} PRIVATE RI_SOURCE_DIR="${CMAKE_SOURCE_DIR}")
endforeach()
