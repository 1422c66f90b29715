#include <stdio.h>
#include "version.h"
int main(void)
{
    printf("vocd %s\n", VOC_VERSION);
    return 0;
}
