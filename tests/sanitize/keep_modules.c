/* Sanitizer builds only (tests/CMakeLists.txt links this into every test program): dlclose does
 * nothing, so libraries loaded at run time (the Vulkan loader and its ICDs, OpenCL, the awqrun
 * plugins) stay mapped until exit. What a driver keeps allocated for the life of the process then
 * stays reachable from its globals, and LeakSanitizer reports only real leaks; once unmapped, those
 * allocations read as leaks of "<unknown module>" that nothing could tell apart from ours. */
int dlclose(void *handle);

int dlclose(void *handle)
{
	(void)handle;
	return 0;
}
