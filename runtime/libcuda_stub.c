/* A one-function stand-in for libcuda.so.1 on machines without an NVIDIA driver.
 * sgl_kernel's CUDA build links against libcuda and resolves this symbol at load time; the
 * CPU engine never calls into CUDA, so loading is all it needs. */
int cuPointerGetAttribute(void *data, int attribute, unsigned long long ptr) { return 1; }
