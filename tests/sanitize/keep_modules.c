/* Sanitizer builds only (tests/CMakeLists.txt links this into every test program): dlclose does
 * nothing, so libraries loaded at run time (the Vulkan loader and its ICDs, OpenCL, the awqrun
 * plugins) stay mapped until exit. LeakSanitizer can then name the library that owns an allocation
 * and tests/lsan.supp can suppress the few that drivers keep for the life of the process; without
 * this their stacks read "<unknown module>" and cannot be told apart from ours. */
int dlclose(void *handle);

int dlclose(void *handle)
{
	(void)handle;
	return 0;
}
